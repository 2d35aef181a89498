"""A happybase-shaped HBase Thrift1 session against Shale's gateway.

Usage: client1.py GENERATED_DIR HOST PORT. The client is generated from
proto/hbase1.thrift (HBase's Hbase.thrift, the part Shale serves) by
Debian's thrift compiler, and the calls are those happybase makes for
Connection.create_table/tables/delete_table, Table.put/batch/row/rows/
cells/scan/counter_inc/counter_get/delete/families/regions. Prints OK on
success; any failed expectation raises and exits non-zero.
"""
import struct
import sys

sys.path.insert(0, sys.argv[1])

from thrift.protocol import TBinaryProtocol  # noqa: E402
from thrift.transport import TSocket, TTransport  # noqa: E402

from hbase import Hbase  # noqa: E402
from hbase.ttypes import (  # noqa: E402
    BatchMutation, ColumnDescriptor, IOError, IllegalArgument, Mutation, TScan,
)

host, port = sys.argv[2], int(sys.argv[3])
transport = TTransport.TBufferedTransport(TSocket.TSocket(host, port))
client = Hbase.Client(TBinaryProtocol.TBinaryProtocol(transport))
transport.open()

# Connection.create_table('happy', {'cf': dict(), 'meta': dict(max_versions=5)})
table = b"happy"
client.createTable(table, [ColumnDescriptor(name=b"cf:"), ColumnDescriptor(name=b"meta:", maxVersions=5)])
assert table in client.getTableNames(), client.getTableNames()
assert client.isTableEnabled(table)
fams = client.getColumnDescriptors(table)
assert sorted(fams) == [b"cf:", b"meta:"], fams
assert fams[b"meta:"].maxVersions == 5, fams
assert client.getThriftServerType() == 1


# Table.batch() / Table.put(): mutateRows (mutateRowsTs with a timestamp).
def put(row, data, ts=None):
    ms = [Mutation(column=c, value=v) for c, v in sorted(data.items())]
    if ts is None:
        client.mutateRows(table, [BatchMutation(row=row, mutations=ms)], {})
    else:
        client.mutateRowsTs(table, [BatchMutation(row=row, mutations=ms)], ts, {})


batch = []
for i in range(10):
    row = b"row-%02d" % i
    batch.append(BatchMutation(row=row, mutations=[
        Mutation(column=b"cf:name", value=b"name%d" % i),
        Mutation(column=b"cf:n", value=b"%d" % i),
        Mutation(column=b"meta:tag", value=b"even" if i % 2 == 0 else b"odd"),
    ]))
client.mutateRows(table, batch, {})

# Table.row(), with and without columns: getRowWithColumns / getRow.
r = client.getRowWithColumns(table, b"row-03", [b"cf:name", b"meta"], {})
assert len(r) == 1 and r[0].row == b"row-03", r
assert {k: v.value for k, v in r[0].columns.items()} == {b"cf:name": b"name3", b"meta:tag": b"odd"}, r
assert len(client.getRow(table, b"row-03", {})[0].columns) == 3
assert client.getRow(table, b"no-such-row", {}) == []

# Table.rows(): getRowsWithColumns (missing rows are left out).
rs = client.getRowsWithColumns(table, [b"row-01", b"missing", b"row-07"], [b"cf:n"], {})
assert [(x.row, x.columns[b"cf:n"].value) for x in rs] == [(b"row-01", b"1"), (b"row-07", b"7")], rs
assert len(client.getRows(table, [b"row-01", b"row-02"], {})) == 2

# Table.cells(): versions, newest first; timestamps are milliseconds.
put(b"versioned", {b"meta:v": b"old"}, ts=1000)
put(b"versioned", {b"meta:v": b"new"}, ts=2000)
cells = client.getVer(table, b"versioned", b"meta:v", 3, {})
assert [(c.value, c.timestamp) for c in cells] == [(b"new", 2000), (b"old", 1000)], cells
assert [c.value for c in client.get(table, b"versioned", b"meta:v", {})] == [b"new"]
# getVerTs reads versions strictly older than the timestamp, as HBase.
assert [c.value for c in client.getVerTs(table, b"versioned", b"meta:v", 2000, 3, {})] == [b"old"]


# Table.scan(): scannerOpenWithScan + scannerGetList until empty + scannerClose.
def scan(**kw):
    sid = client.scannerOpenWithScan(table, TScan(**kw), {})
    out = []
    while True:
        page = client.scannerGetList(sid, 3)
        if not page:
            break
        out.extend(page)
    client.scannerClose(sid)
    return out


rows = scan(startRow=b"row-02", stopRow=b"row-06", columns=[b"cf:name"], caching=2)
assert [x.row for x in rows] == [b"row-02", b"row-03", b"row-04", b"row-05"], rows
assert all(list(x.columns) == [b"cf:name"] for x in rows), rows

# The filter language (Table.scan(filter=...)): pushed down where the
# tablet servers can, evaluated in the gateway otherwise.
rows = scan(filterString=b"SingleColumnValueFilter('meta', 'tag', =, 'binary:even', true, true) AND KeyOnlyFilter()")
assert [x.row for x in rows] == [b"row-%02d" % i for i in range(0, 10, 2)], rows
assert all(c.value == b"" for x in rows for c in x.columns.values()), rows
rows = scan(filterString=b"PrefixFilter('row-0') AND ColumnPrefixFilter('na') AND PageFilter(2)")
assert [(x.row, list(x.columns)) for x in rows] == [(b"row-00", [b"cf:name"]), (b"row-01", [b"cf:name"])], rows
rows = scan(startRow=b"row-05", filterString=b"WHILE RowFilter(<=, 'binary:row-06')", sortColumns=True)
assert [x.row for x in rows] == [b"row-05", b"row-06"], rows
assert [c.columnName for c in rows[0].sortedColumns] == [b"cf:n", b"cf:name", b"meta:tag"], rows[0]
rows = scan(reversed=True, startRow=b"row-02", columns=[b"cf:n"])
assert [x.row for x in rows] == [b"row-02", b"row-01", b"row-00"], rows
try:
    scan(filterString=b"NoSuchFilter('x')")
    raise AssertionError("a bad filter string was accepted")
except IOError as e:
    assert "unknown filter" in e.message and "NoSuchFilter" in e.message, e.message

# Scanner variants: prefix, start/stop, start only; scannerGet one row at a time.
sid = client.scannerOpenWithPrefix(table, b"row-0", [b"cf:n"], {})
seen = []
while True:
    one = client.scannerGet(sid)
    if not one:
        break
    seen.append(one[0].row)
client.scannerClose(sid)
assert seen == [b"row-%02d" % i for i in range(10)], seen
sid = client.scannerOpenWithStop(table, b"row-08", b"row-09", [], {})
assert [x.row for x in client.scannerGetList(sid, 10)] == [b"row-08"]
client.scannerClose(sid)
sid = client.scannerOpen(table, b"row-09", [b"meta"], {})
assert [x.row for x in client.scannerGetList(sid, 10)] == [b"row-09", b"versioned"]
client.scannerClose(sid)
try:
    client.scannerGet(sid)
    raise AssertionError("a closed scanner answered")
except IllegalArgument:
    pass

# Table.counter_inc / counter_get / counter_dec: atomicIncrement.
assert client.atomicIncrement(table, b"counter", b"cf:hits", 1) == 1
assert client.atomicIncrement(table, b"counter", b"cf:hits", 41) == 42
assert client.atomicIncrement(table, b"counter", b"cf:hits", 0) == 42
assert client.atomicIncrement(table, b"counter", b"cf:hits", -2) == 40
raw = client.get(table, b"counter", b"cf:hits", {})[0].value
assert struct.unpack(">q", raw)[0] == 40, raw

# Table.delete(row, columns): a batch of delete mutations; Table.delete(row): deleteAllRow.
client.mutateRow(table, b"row-04", [Mutation(isDelete=True, column=b"cf:name")], {})
assert set(client.getRow(table, b"row-04", {})[0].columns) == {b"cf:n", b"meta:tag"}
client.deleteAll(table, b"row-04", b"meta:tag", {})
assert set(client.getRow(table, b"row-04", {})[0].columns) == {b"cf:n"}
client.deleteAllRow(table, b"row-05", {})
assert client.getRow(table, b"row-05", {}) == []

# Table.regions(): getTableRegions (a region is a tablet).
regions = client.getTableRegions(table)
assert len(regions) >= 1 and regions[0].startKey == b"" and regions[-1].endKey == b"", regions
assert all(r.port > 0 for r in regions), regions

# Errors are HBase's exceptions.
try:
    client.createTable(table, [ColumnDescriptor(name=b"cf:")])
    raise AssertionError("created a table twice")
except Exception as e:  # AlreadyExists
    assert type(e).__name__ == "AlreadyExists", e
try:
    client.getRow(b"no_such_table", b"r", {})
    raise AssertionError("read a missing table")
except IOError as e:
    assert "TableNotFound" in e.message or "not found" in e.message, e.message

# Connection.delete_table(name, disable=True).
client.deleteTable(table)
assert table not in client.getTableNames()

transport.close()
print("OK")
