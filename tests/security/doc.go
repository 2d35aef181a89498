// Package security tests a secure cluster in one process
// (internal/testcluster with Options.Secure): clients without a
// certificate or with one from another CA are refused on every port, PD
// binds a store's address to the certificate that registers it, and the
// Thrift gateway serves TLS clients only. The real-process test of the
// same, with certificates from `shale cert` and rotation on disk, is
// tests/process (TestSecureCluster).
package security
