// Package security holds Shale's transport security: certificates for
// people without a PKI (CreateCA, CreateNode, CreateClient, behind
// `shale cert`), and TLS configurations for servers and clients that load
// a CA, a certificate and a key from files and pick up new files without a
// restart (Reloader).
//
// Identities come from certificates. A node certificate (CN "node", the
// hosts as SANs, usable as server and client) identifies a Shale process;
// a client certificate's CN is the user's name. Nodes may further be
// restricted to a list of allowed names (--cert-allowed-cn, as TiKV and
// etcd): a peer presenting a node certificate whose CN is not in the list
// fails the handshake.
//
// Processes get their Reloader from ForServer (which refuses to run a
// server without certificates unless it is insecure on purpose) or
// ForClient; HTTPListener and RequireClientCert put the status ports
// behind it, and CoversAddress binds a store's address to a certificate
// (docs/security.md, docs/decisions.md "Transport security").
//
// Keys are ECDSA P-256 and certificates are made with crypto/x509: the
// standard library covers all of it, and P-256 handshakes are cheaper than
// RSA-2048 ones (docs/security.md).
package security
