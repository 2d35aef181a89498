"""An HBase Thrift2 client session against Shale's gateway.

Usage: client.py GENERATED_DIR HOST PORT. Prints OK on success; any
failed expectation raises and exits non-zero.
"""
import sys

sys.path.insert(0, sys.argv[1])

from thrift.protocol import TBinaryProtocol  # noqa: E402
from thrift.transport import TSocket, TTransport  # noqa: E402

from hbase import THBaseService  # noqa: E402
from hbase.ttypes import (  # noqa: E402
    TColumn, TColumnFamilyDescriptor, TColumnIncrement, TColumnValue, TDelete,
    TGet, TIncrement, TIOError, TNamespaceDescriptor, TPut, TScan, TTableDescriptor, TTableName,
)

host, port = sys.argv[2], int(sys.argv[3])
sock = TSocket.TSocket(host, port)
transport = TTransport.TBufferedTransport(sock)
client = THBaseService.Client(TBinaryProtocol.TBinaryProtocol(transport))
transport.open()

table = b"pyusers"
name = TTableName(ns=b"default", qualifier=table)
client.createTable(TTableDescriptor(tableName=name, columns=[TColumnFamilyDescriptor(name=b"f")]), None)
assert client.tableExists(name), "table not created"

for i in range(5):
    row = b"row%d" % i
    client.put(table, TPut(row=row, columnValues=[TColumnValue(family=b"f", qualifier=b"q", value=b"v%d" % i)]))

got = client.get(table, TGet(row=b"row2"))
assert got.columnValues[0].value == b"v2", got

scanner = client.openScanner(table, TScan(startRow=b"row1", stopRow=b"row4"))
rows = client.getScannerRows(scanner, 10)
client.closeScanner(scanner)
assert [r.row for r in rows] == [b"row1", b"row2", b"row3"], rows

put = TPut(row=b"row0", columnValues=[TColumnValue(family=b"f", qualifier=b"q", value=b"new")])
assert client.checkAndPut(table, b"row0", b"f", b"q", b"v0", put), "checkAndPut with the right value failed"
assert not client.checkAndPut(table, b"row0", b"f", b"q", b"v0", put), "checkAndPut with a stale value succeeded"
assert client.get(table, TGet(row=b"row0")).columnValues[0].value == b"new"

for _ in range(3):
    res = client.increment(table, TIncrement(row=b"ctr", columns=[TColumnIncrement(family=b"f", qualifier=b"n", amount=2)]))
assert int.from_bytes(res.columnValues[0].value, "big", signed=True) == 6, res

# Region locations are the table's tablets, served by tablet servers.
split = b"pysplit"
client.createTable(TTableDescriptor(tableName=TTableName(qualifier=split), columns=[TColumnFamilyDescriptor(name=b"f")]), [b"m"])
locs = client.getAllRegionLocations(split)
assert [(l.regionInfo.startKey or b"", l.regionInfo.endKey or b"") for l in locs] == [(b"", b"m"), (b"m", b"")], locs
assert all(l.serverName.port > 0 and l.regionInfo.regionId > 0 for l in locs), locs
loc = client.getRegionLocation(split, b"x", False)
assert loc.regionInfo.regionId == locs[1].regionInfo.regionId, loc
client.deleteTable(TTableName(qualifier=split))

client.deleteSingle(table, TDelete(row=b"row3"))
assert not client.exists(table, TGet(row=b"row3")), "deleted row still exists"
assert client.exists(table, TGet(row=b"row4"))

# Filters (filterString) on gets and scans.
rows = client.getScannerResults(table, TScan(filterString=b"ValueFilter(=, 'binaryprefix:v') AND RowFilter(>=, 'binary:row2')"), 10)
assert [r.row for r in rows] == [b"row2", b"row4"], rows
assert client.get(table, TGet(row=b"row2", filterString=b"ValueFilter(=, 'binary:nope')")).columnValues == []
try:
    client.get(table, TGet(row=b"row2", filterString=b"RowFilter(=, 'binary:x'"))
    raise AssertionError("a malformed filter string was accepted")
except TIOError as e:
    assert "IllegalArgumentException: bad filter string" in e.message, e.message

# Namespaces: create, list, ns:table names, delete (only when empty).
client.createNamespace(TNamespaceDescriptor(name="pyns", configuration={"owner": "py"}))
assert "pyns" in client.listNamespaces(), client.listNamespaces()
assert client.getNamespaceDescriptor("pyns").configuration == {"owner": "py"}
nst = TTableName(ns=b"pyns", qualifier=b"t")
client.createTable(TTableDescriptor(tableName=nst, columns=[TColumnFamilyDescriptor(name=b"f")]), None)
client.put(b"pyns:t", TPut(row=b"r", columnValues=[TColumnValue(family=b"f", qualifier=b"q", value=b"in-ns")]))
assert client.get(b"pyns:t", TGet(row=b"r")).columnValues[0].value == b"in-ns"
assert [(n.ns, n.qualifier) for n in client.getTableNamesByNamespace("pyns")] == [(b"pyns", b"t")]
assert b"t" not in [n.qualifier for n in client.getTableNamesByNamespace("default")]
try:
    client.deleteNamespace("pyns")
    raise AssertionError("deleted a namespace that has a table")
except TIOError as e:
    assert "only empty namespaces" in e.message, e.message
client.deleteTable(nst)
client.deleteNamespace("pyns")
assert "pyns" not in client.listNamespaces()

# The raw key/value API (shale kv) is the table "kv": row = key, family
# "v", empty qualifier. The Go test reads this back with shale kv get.
client.put(b"kv", TPut(row=b"from-python", columnValues=[TColumnValue(family=b"v", qualifier=b"", value=b"hi")]))

transport.close()
print("OK")
