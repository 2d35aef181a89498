package sqllite

import (
	"fmt"
	"sort"
)

func typeString(v any) string { return fmt.Sprintf("%T", v) }

func sortStrings(s []string) { sort.Strings(s) }
