// Package fuzzutil helps fuzz targets feed raw bytes to real servers: the
// bytes go over a real gRPC connection, undecoded, so the server's own
// decoding, interceptors and handlers see exactly what a hostile client
// could send.
package fuzzutil
