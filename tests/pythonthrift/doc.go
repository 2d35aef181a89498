// Package pythonthrift proves the Thrift gateway speaks HBase's Thrift2
// protocol to another language: it generates a Python client from
// proto/hbase.thrift with Debian's thrift compiler and runs it with
// Debian's python3-thrift against the gateway of a real `shale playground`
// process (tables, put/get/scan, checkAndPut, increment, region locations,
// delete); `shale kv put/get` then runs against the same playground, as
// the README's `make run` session does. scripts/install-tools.sh (run by
// make test and .ci/run) installs the compiler and python3-thrift.
package pythonthrift
