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
    TGet, TIncrement, TPut, TScan, TTableDescriptor, TTableName,
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

# The raw key/value API (shale kv) is the table "kv": row = key, family
# "v", empty qualifier. The Go test reads this back with shale kv get.
client.put(b"kv", TPut(row=b"from-python", columnValues=[TColumnValue(family=b"v", qualifier=b"", value=b"hi")]))

transport.close()
print("OK")
