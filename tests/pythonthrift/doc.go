// Package pythonthrift proves the Thrift gateway speaks HBase's Thrift2
// protocol to another language: it generates a Python client from
// proto/hbase.thrift with Debian's thrift compiler and runs it with
// Debian's python3-thrift against a gateway on a real cluster.
// scripts/install-tools.sh (run by make test and .ci/run) installs both.
package pythonthrift
