// Package tablefmt is the text form of kvclient's table API on a command
// line, in the manner of Bigtable's cbt: it parses column-family specs
// (FAMILY[:maxversions=N,maxage=D]), cell specs (FAMILY:QUALIFIER=VALUE)
// and scan bounds (start=ROW end=ROW count=N) into kvclient values, and
// prints rows and table descriptions as `shale table` shows them.
//
// Every parse error names the offending argument and the expected format,
// so a command can return it to the user as is. The package does no I/O
// other than writing to the io.Writer it is given; cmd/shale wires it to
// cobra commands and a kvclient.Client.
//
// # Output
//
// A row is printed as
//
//	ROW
//	  FAMILY:QUALIFIER @ 2026/01/02-15:04:05.000000
//	    "VALUE"
//
// with timestamps in UTC (microseconds) and values quoted as Go string
// literals; WriteRows precedes each row with a line of 40 dashes, as cbt's
// read does.
package tablefmt
