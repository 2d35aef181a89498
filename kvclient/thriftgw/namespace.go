package thriftgw

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/hbase"
)

// Namespaces. Shale has one flat table namespace, so the HBase table
// "ns:q" is the Shale table "ns.q" ('.' is allowed in Shale and HBase
// table names, not in HBase namespace names), and "default:q" or "q" is
// "q". The namespaces themselves are rows of the Shale table
// _hbase_namespaces (created with the first namespace; hidden from table
// listings), their configuration its cells. A Shale table "a.b" belongs to
// namespace "a" when that namespace exists, else to default; to keep that
// unambiguous, creating namespace "a" is refused while a table "a.*"
// exists, and creating the default-namespace table "a.b" while namespace
// "a" exists. Deleting a namespace that has tables is refused, as HBase.

const (
	nsTable  = "_hbase_namespaces"
	nsFamily = "c"
	// nsMarker is the qualifier of the cell every namespace row has
	// (configuration keys are non-empty).
	nsMarker = ""
)

// builtinNamespace is the namespace that always exists.
const builtinNamespace = "default"

func validNamespace(ns string) error {
	if ns == "" {
		return illegalf("empty namespace name")
	}
	for _, c := range ns {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return illegalf("illegal namespace name %q: use letters, digits and '_'", ns)
		}
	}
	return nil
}

// shaleName is the Shale table of HBase table q in namespace ns.
func shaleName(ns, q string) (string, error) {
	if q == "" {
		return "", illegalf("empty table name")
	}
	if ns == "" || ns == builtinNamespace {
		return q, nil
	}
	if err := validNamespace(ns); err != nil {
		return "", err
	}
	return ns + "." + q, nil
}

// nsSet is the namespaces that exist (default aside).
type nsSet map[string]bool

// split returns the HBase namespace and qualifier of a Shale table.
func (s nsSet) split(name string) (ns, q string) {
	if p, rest, ok := strings.Cut(name, "."); ok && s[p] && rest != "" {
		return p, rest
	}
	return builtinNamespace, name
}

// hbaseName is the HBase name of a Shale table: "q" in the default
// namespace, "ns:q" in another.
func (s nsSet) hbaseName(name string) string {
	ns, q := s.split(name)
	if ns == builtinNamespace {
		return q
	}
	return ns + ":" + q
}

func (s nsSet) tTableName(name string) *hbase.TTableName {
	ns, q := s.split(name)
	return &hbase.TTableName{Ns: []byte(ns), Qualifier: []byte(q)}
}

// namespaces reads the namespaces and their configurations.
func (h *handler) namespaces(ctx context.Context) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	t, err := h.c.Table(ctx, nsTable)
	if errors.Is(err, kvclient.ErrTableNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	sc := t.Scan(ctx, kvclient.ScanOptions{})
	defer sc.Close()
	for sc.Next() {
		r := sc.Row()
		conf := map[string]string{}
		for _, c := range r.Cells {
			if len(c.Qualifier) > 0 {
				conf[string(c.Qualifier)] = string(c.Value)
			}
		}
		out[string(r.Key)] = conf
	}
	if err := sc.Err(); errors.Is(err, kvclient.ErrTableNotFound) {
		return map[string]map[string]string{}, nil
	} else if err != nil {
		return nil, err
	}
	return out, nil
}

func (h *handler) namespaceSet(ctx context.Context) (nsSet, error) {
	all, err := h.namespaces(ctx)
	if err != nil {
		return nil, err
	}
	s := nsSet{}
	for ns := range all {
		s[ns] = true
	}
	return s, nil
}

// checkCreate refuses to create the HBase table hb (the Shale table
// name) in a namespace that does not exist, or a default-namespace table
// that would read as another namespace's.
func (h *handler) checkCreate(ctx context.Context, ns, q string) error {
	set, err := h.namespaceSet(ctx)
	if err != nil {
		return err
	}
	if ns == "" || ns == builtinNamespace {
		if p, _, ok := strings.Cut(q, "."); ok && set[p] {
			return illegalf("table %q in the default namespace would be table %q of namespace %q (Shale stores ns:table as ns.table); choose another name", q, strings.TrimPrefix(q, p+"."), p)
		}
		return nil
	}
	if !set[ns] {
		return illegalf("NamespaceNotFoundException: %s", ns)
	}
	return nil
}

// checkNamespaceOf is checkCreate for an HBase name "ns:q" or "q".
func (h *thrift1) checkNamespaceOf(ctx context.Context, hbaseName []byte) error {
	ns, q, ok := strings.Cut(string(hbaseName), ":")
	if !ok {
		ns, q = builtinNamespace, ns
	}
	return h.checkCreate(ctx, ns, q)
}

func nsDescriptor(name string, conf map[string]string) *hbase.TNamespaceDescriptor {
	d := &hbase.TNamespaceDescriptor{Name: name}
	if len(conf) > 0 {
		d.Configuration = conf
	}
	return d
}

func (h *handler) CreateNamespace(ctx context.Context, d *hbase.TNamespaceDescriptor) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if d == nil {
		return ioError(illegalf("missing TNamespaceDescriptor"))
	}
	if err := validNamespace(d.Name); err != nil {
		return ioError(err)
	}
	if d.Name == builtinNamespace || d.Name == "hbase" {
		return ioError(illegalf("NamespaceExistException: %s", d.Name))
	}
	tis, err := h.c.ListTables(ctx)
	if err != nil {
		return ioError(err)
	}
	for _, ti := range tis {
		if strings.HasPrefix(ti.Name, d.Name+".") {
			return ioError(illegalf("namespace %q would take in the existing table %q (Shale stores ns:table as ns.table); rename or drop it first", d.Name, ti.Name))
		}
	}
	if _, err := h.c.CreateTable(ctx, nsTable, []kvclient.Family{{Name: nsFamily, MaxVersions: 1}}); err != nil && !errors.Is(err, kvclient.ErrTableExists) {
		return ioError(err)
	}
	t, err := h.c.Table(ctx, nsTable)
	if err != nil {
		return ioError(err)
	}
	muts, err := nsMutations(d)
	if err != nil {
		return ioError(err)
	}
	ok, err := t.CheckAndMutateRow(ctx, []byte(d.Name), kvclient.Condition{Family: nsFamily, Qualifier: []byte(nsMarker), Op: kvclient.NotExists}, muts, nil)
	if err != nil {
		return ioError(err)
	}
	if !ok {
		return ioError(illegalf("NamespaceExistException: %s", d.Name))
	}
	return nil
}

// nsMutations writes a namespace's row: the marker and its configuration.
func nsMutations(d *hbase.TNamespaceDescriptor) ([]kvclient.Mutation, error) {
	muts := []kvclient.Mutation{kvclient.SetCell(nsFamily, []byte(nsMarker), nil)}
	for k, v := range d.Configuration {
		if k == "" {
			return nil, illegalf("empty configuration key in namespace %q", d.Name)
		}
		muts = append(muts, kvclient.SetCell(nsFamily, []byte(k), []byte(v)))
	}
	return muts, nil
}

func (h *handler) ModifyNamespace(ctx context.Context, d *hbase.TNamespaceDescriptor) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if d == nil {
		return ioError(illegalf("missing TNamespaceDescriptor"))
	}
	t, err := h.existingNamespace(ctx, d.Name)
	if err != nil {
		return ioError(err)
	}
	muts, err := nsMutations(d)
	if err != nil {
		return ioError(err)
	}
	// Replace the configuration, if the namespace still exists.
	muts = append([]kvclient.Mutation{kvclient.DeleteFamily(nsFamily)}, muts...)
	ok, err := t.CheckAndMutateRow(ctx, []byte(d.Name), kvclient.Condition{Family: nsFamily, Qualifier: []byte(nsMarker), Op: kvclient.Exists}, muts, nil)
	if err == nil && !ok {
		err = illegalf("NamespaceNotFoundException: %s", d.Name)
	}
	return ioError(err)
}

// existingNamespace returns the namespace table if ns is a namespace
// other than default.
func (h *handler) existingNamespace(ctx context.Context, ns string) (*kvclient.Table, error) {
	if ns == builtinNamespace {
		return nil, unsupportedf("changing or deleting the default namespace")
	}
	all, err := h.namespaces(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := all[ns]; !ok {
		return nil, illegalf("NamespaceNotFoundException: %s", ns)
	}
	return h.c.Table(ctx, nsTable)
}

func (h *handler) DeleteNamespace(ctx context.Context, name string) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	t, err := h.existingNamespace(ctx, name)
	if err != nil {
		return ioError(err)
	}
	tis, err := h.c.ListTables(ctx)
	if err != nil {
		return ioError(err)
	}
	for _, ti := range tis {
		if strings.HasPrefix(ti.Name, name+".") {
			return ioError(illegalf("ConstraintException: namespace %s has table %s; only empty namespaces can be removed", name, strings.TrimPrefix(ti.Name, name+".")))
		}
	}
	_, err = t.MutateRow(ctx, []byte(name), kvclient.DeleteRow())
	return ioError(err)
}

func (h *handler) GetNamespaceDescriptor(ctx context.Context, name string) (*hbase.TNamespaceDescriptor, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if name == builtinNamespace {
		return nsDescriptor(name, nil), nil
	}
	all, err := h.namespaces(ctx)
	if err != nil {
		return nil, ioError(err)
	}
	conf, ok := all[name]
	if !ok {
		return nil, ioError(illegalf("NamespaceNotFoundException: %s", name))
	}
	return nsDescriptor(name, conf), nil
}

func (h *handler) ListNamespaceDescriptors(ctx context.Context) ([]*hbase.TNamespaceDescriptor, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	all, err := h.namespaces(ctx)
	if err != nil {
		return nil, ioError(err)
	}
	out := []*hbase.TNamespaceDescriptor{nsDescriptor(builtinNamespace, nil)}
	for _, n := range sortedKeys(all) {
		out = append(out, nsDescriptor(n, all[n]))
	}
	return out, nil
}

func (h *handler) ListNamespaces(ctx context.Context) ([]string, error) {
	ds, err := h.ListNamespaceDescriptors(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out, nil
}

func sortedKeys(m map[string]map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
