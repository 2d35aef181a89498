// Package filterlang parses and evaluates HBase's filter language (the
// strings of TScan.filterString and TGet.filterString, HBase's ParseFilter
// grammar) for the Thrift gateways.
//
// # Grammar
//
//	expr   := and ("OR" and)*
//	and    := unary ("AND" unary)*
//	unary  := "SKIP" unary | "WHILE" unary | "(" expr ")" | filter
//	filter := Name "(" [arg ("," arg)*] ")"
//	arg    := 'quoted string' | integer | true | false | < | <= | = | != | > | >=
//
// Quotes inside a quoted string are doubled (”). A comparator is a quoted
// string "binary:V", "binaryprefix:V", "regexstring:RE" or "substring:S";
// binary and binaryprefix values read \xNN escapes as bytes (as HBase's
// Bytes.toBytesBinary), regexstring and substring take only = and != (as
// HBase). A comparison keeps what "cell OP value" holds for:
// RowFilter(<, 'binary:m') keeps rows before "m". Regular expressions are
// Go's RE2 syntax (HBase uses java.util.regex): they match anywhere in the
// value unless anchored; back-references and look-arounds are refused.
//
// Filters (arguments as HBase's):
//
//	PrefixFilter('p')  RowFilter(op, 'cmp')  InclusiveStopFilter('row')
//	PageFilter(n)      ValueFilter(op, 'cmp')
//	SingleColumnValueFilter('f', 'q', op, 'cmp'[, filterIfMissing, latestVersionOnly])
//	SingleColumnValueExcludeFilter(same arguments)
//	KeyOnlyFilter([lenAsValue])  FirstKeyOnlyFilter()
//	ColumnPrefixFilter('p')  MultipleColumnPrefixFilter('p1', 'p2', ...)
//	ColumnRangeFilter('min', minInclusive, 'max', maxInclusive)
//	QualifierFilter(op, 'cmp')  FamilyFilter(op, 'cmp')
//	TimestampsFilter(ms1, ms2, ...)
//	ColumnCountGetFilter(n)  ColumnPaginationFilter(limit, offset)
//
// An unknown filter, a wrong argument, a bad regular expression or a
// malformed string is an *Error naming what and where.
//
// # Evaluation
//
// The evaluator works on whole rows (kvclient.Row, cells in storage order:
// family, qualifier, newest version first) and keeps per-scan state
// (PageFilter's count, WHILE's end), so each scan or get takes a fresh
// Scan from Filter.NewScan. For every row it returns the cells kept; a
// row left without cells is not returned, as in HBase. The rules:
//
//   - A AND B runs B on what A kept: B sees only A's cells (HBase's
//     FilterList MUST_PASS_ALL passes a cell to the next filter only when
//     the previous ones included it); the row is dropped if either drops it.
//   - A OR B runs both on the whole row and keeps the union of their
//     cells, in the row's order (a cell both kept comes from A).
//   - SKIP F keeps the row as F leaves it only if F keeps every cell;
//     otherwise the row is dropped.
//   - WHILE F returns rows as F leaves them until F drops a row or a cell
//     of one; that row is dropped and the scan ends.
//   - Stateful filters count what reaches them: PageFilter(n) passes the
//     first n rows that reach it with cells, then ends the scan (over the
//     whole scan: HBase counts per region server); InclusiveStopFilter
//     ends the scan after its row (before it, reversed).
//   - Version-aware filters: ColumnCountGetFilter, ColumnPaginationFilter
//     and FirstKeyOnlyFilter keep only the newest version of the columns
//     they keep (HBase's INCLUDE_AND_NEXT_COL); the others judge each
//     version. ColumnCountGetFilter keeps each row's first n columns (in
//     scans too; HBase meant it for gets). Columns are (family,
//     qualifier) pairs, counted in storage order.
//   - SingleColumnValueFilter judges the newest version of its column
//     among the cells that reach it (latestVersionOnly=false: any
//     version); a row without the column passes unless filterIfMissing.
//   - TimestampsFilter takes milliseconds, as the gateway's timestamps.
//
// # Push-down
//
// Filter.PushDown extracts what the tablet servers can do from the
// leading part of the top-level AND chain that the evaluator's rules let
// run first: the row range of PrefixFilter, InclusiveStopFilter and
// RowFilter with a binary comparator, SingleColumnValueFilter with a
// binary comparator as a kvclient.RowFilter, and FamilyFilter(=,
// 'binary:f') as a family selection. The gateway still evaluates the whole
// filter on what comes back, so a push-down only saves work: it never
// changes the result.
package filterlang
