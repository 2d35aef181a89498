package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/shaledb/shale/internal/proctest"
)

// ---- the shale binary's flags ----

var (
	flagsOnce sync.Once
	flagsBy   map[string][]string
	flagsErr  error
)

var flagLine = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9-]+)`)

// shaleFlags returns the flags `shale SUB --help` lists for pd, tablet,
// thrift, health and cert (the real binary, built once).
func shaleFlags(t *testing.T) map[string][]string {
	t.Helper()
	bin := proctest.Binary(t)
	flagsOnce.Do(func() {
		flagsBy = map[string][]string{}
		for _, sub := range []string{"pd", "tablet", "thrift", "health", "cert"} {
			out, err := exec.Command(bin, sub, "--help").CombinedOutput()
			if err != nil {
				flagsErr = fmt.Errorf("shale %s --help: %v\n%s", sub, err, out)
				return
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
					flagsBy[sub] = append(flagsBy[sub], m[1])
				}
			}
		}
	})
	require.NoError(t, flagsErr)
	require.Contains(t, flagsBy["pd"], "initial-cluster", "flag parsing of --help output broke")
	require.Contains(t, flagsBy["tablet"], "labels", "flag parsing of --help output broke")
	return flagsBy
}

// checkArgs checks a server command line: a known subcommand, then only
// flags that subcommand has (as --flag=value or --flag value).
func checkArgs(t *testing.T, where string, args []string) {
	t.Helper()
	flags := shaleFlags(t)
	require.NotEmpty(t, args, "%s: no command", where)
	sub := args[0]
	known, ok := flags[sub]
	require.True(t, ok, "%s: %q is not a shale subcommand checked here", where, sub)
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		require.True(t, slices.Contains(known, name) || slices.Contains(flags["pd"], name) && name == "config",
			"%s: --%s is not a flag of `shale %s` (flags: %v)", where, name, sub, known)
	}
}

// checkEnv checks that SHALE_<SECTION>_<FLAG> names a real flag.
func checkEnv(t *testing.T, where, name string) {
	t.Helper()
	if name == "SHALE_CONFIG" || name == "SHALE_LOG_LEVEL" {
		return
	}
	flags := shaleFlags(t)
	for _, sub := range []string{"pd", "tablet"} {
		prefix := "SHALE_" + strings.ToUpper(sub) + "_"
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			flag := strings.ReplaceAll(strings.ToLower(rest), "_", "-")
			require.Contains(t, flags[sub], flag, "%s: %s is not a flag of `shale %s`", where, name, sub)
			return
		}
	}
	require.Failf(t, "unknown variable", "%s: %s is not SHALE_PD_* or SHALE_TABLET_*", where, name)
}

// checkConfigFile checks a shale config file: only log-level and the pd
// and tablet sections, whose keys are flags of those subcommands.
func checkConfigFile(t *testing.T, where string, data []byte) {
	t.Helper()
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(data, &cfg), where)
	flags := shaleFlags(t)
	for k, v := range cfg {
		if k == "log-level" {
			continue
		}
		require.Contains(t, []string{"pd", "tablet", "security"}, k, "%s: unknown top-level key %q", where, k)
		section, ok := v.(map[string]any)
		require.True(t, ok, "%s: %s must be a map", where, k)
		if k == "security" {
			for key := range section {
				require.Contains(t, []string{"ca", "cert", "key", "cert-allowed-cn", "insecure"}, key, "%s: security.%s is not a security setting", where, key)
			}
			continue
		}
		for key := range section {
			require.Contains(t, flags[k], key, "%s: %s.%s is not a flag of `shale %s`", where, k, key, k)
		}
	}
}

// ---- Kubernetes manifests ----

// The cert-manager resources this checks (cert-manager.io/v1; the fields
// deploy/k8s/certs.yaml uses, decoded strictly so a misspelt one fails).
type cmIssuerRef struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

type cmCertificate struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		IsCA        bool     `json:"isCA"`
		CommonName  string   `json:"commonName"`
		SecretName  string   `json:"secretName"`
		Duration    string   `json:"duration"`
		RenewBefore string   `json:"renewBefore"`
		Usages      []string `json:"usages"`
		DNSNames    []string `json:"dnsNames"`
		IPAddresses []string `json:"ipAddresses"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		IssuerRef cmIssuerRef `json:"issuerRef"`
	} `json:"spec"`
}

type cmIssuer struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		SelfSigned *struct{} `json:"selfSigned"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca"`
	} `json:"spec"`
}

type manifests struct {
	certificates []cmCertificate
	issuers      []cmIssuer
	services     []corev1.Service
	configMaps   []corev1.ConfigMap
	statefulSets []appsv1.StatefulSet
	deployments  []appsv1.Deployment
	pdbs         []policyv1.PodDisruptionBudget
}

// decodeStrict decodes one YAML document into out, failing on unknown or
// duplicate fields.
func decodeStrict(t *testing.T, where string, doc []byte, out any) {
	t.Helper()
	require.NoError(t, yaml.UnmarshalStrict(doc, out), "%s: strict decoding into %T", where, out)
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var m manifests
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			where := fmt.Sprintf("%s document %d", f, i)
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			require.NoError(t, yaml.Unmarshal([]byte(doc), &head), where)
			if head.Kind == "" && strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			switch head.APIVersion + " " + head.Kind {
			case "v1 Service":
				var o corev1.Service
				decodeStrict(t, where, []byte(doc), &o)
				m.services = append(m.services, o)
			case "v1 ConfigMap":
				var o corev1.ConfigMap
				decodeStrict(t, where, []byte(doc), &o)
				m.configMaps = append(m.configMaps, o)
			case "apps/v1 StatefulSet":
				var o appsv1.StatefulSet
				decodeStrict(t, where, []byte(doc), &o)
				m.statefulSets = append(m.statefulSets, o)
			case "apps/v1 Deployment":
				var o appsv1.Deployment
				decodeStrict(t, where, []byte(doc), &o)
				m.deployments = append(m.deployments, o)
			case "cert-manager.io/v1 Certificate":
				var o cmCertificate
				decodeStrict(t, where, []byte(doc), &o)
				m.certificates = append(m.certificates, o)
			case "cert-manager.io/v1 Issuer":
				var o cmIssuer
				decodeStrict(t, where, []byte(doc), &o)
				m.issuers = append(m.issuers, o)
			case "policy/v1 PodDisruptionBudget":
				var o policyv1.PodDisruptionBudget
				decodeStrict(t, where, []byte(doc), &o)
				m.pdbs = append(m.pdbs, o)
			default:
				t.Fatalf("%s: unexpected kind %q %q", where, head.APIVersion, head.Kind)
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// selects reports whether every selector label is among labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type workload struct {
	kind, name string
	replicas   int32
	selector   map[string]string
	pod        corev1.PodTemplateSpec
	claims     []string
}

func (m manifests) workloads() []workload {
	var out []workload
	for _, s := range m.statefulSets {
		w := workload{kind: "StatefulSet", name: s.Name, selector: s.Spec.Selector.MatchLabels, pod: s.Spec.Template, replicas: 1}
		if s.Spec.Replicas != nil {
			w.replicas = *s.Spec.Replicas
		}
		for _, c := range s.Spec.VolumeClaimTemplates {
			w.claims = append(w.claims, c.Name)
		}
		out = append(out, w)
	}
	for _, d := range m.deployments {
		w := workload{kind: "Deployment", name: d.Name, selector: d.Spec.Selector.MatchLabels, pod: d.Spec.Template, replicas: 1}
		if d.Spec.Replicas != nil {
			w.replicas = *d.Spec.Replicas
		}
		out = append(out, w)
	}
	return out
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	require.Len(t, m.configMaps, 1)
	require.NotEmpty(t, m.statefulSets)
	require.NotEmpty(t, m.deployments)
	require.NotEmpty(t, m.pdbs)

	services := map[string]corev1.Service{}
	for _, s := range m.services {
		services[s.Name] = s
	}
	configMaps := map[string]corev1.ConfigMap{}
	for _, c := range m.configMaps {
		configMaps[c.Name] = c
		for key, data := range c.Data {
			if strings.HasSuffix(key, ".yaml") {
				checkConfigFile(t, "ConfigMap "+c.Name+" "+key, []byte(data))
			}
		}
	}

	// Pod DNS names (POD.SERVICE) that the config and arguments may use.
	podDNS := map[string]bool{}
	components := map[string]bool{}
	for _, w := range m.workloads() {
		where := w.kind + " " + w.name
		require.True(t, selects(w.selector, w.pod.Labels), "%s: selector %v does not match its pod labels %v", where, w.selector, w.pod.Labels)
		components[w.pod.Labels["app.kubernetes.io/component"]] = true
		spec := w.pod.Spec
		volumes := map[string]bool{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = true
			if v.ConfigMap != nil {
				_, ok := configMaps[v.ConfigMap.Name]
				require.True(t, ok, "%s: volume %s refers to a ConfigMap %q that is not defined", where, v.Name, v.ConfigMap.Name)
			}
		}
		for _, c := range w.claims {
			volumes[c] = true
		}
		require.Len(t, spec.Containers, 1, where)
		c := spec.Containers[0]
		checkArgs(t, where, c.Args)
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "SHALE_") {
				checkEnv(t, where, e.Name)
			}
		}
		for _, vm := range c.VolumeMounts {
			require.True(t, volumes[vm.Name], "%s: mount of undefined volume %q", where, vm.Name)
		}
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		require.NotNil(t, c.ReadinessProbe, "%s: no readiness probe", where)
		require.NotNil(t, c.LivenessProbe, "%s: no liveness probe", where)
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			switch {
			case p.HTTPGet != nil:
				require.Equal(t, "/healthz", p.HTTPGet.Path, where)
				_, ok := ports[p.HTTPGet.Port.String()]
				require.True(t, ok, "%s: probe port %s is not a container port", where, p.HTTPGet.Port.String())
			case p.TCPSocket != nil:
				_, ok := ports[p.TCPSocket.Port.String()]
				require.True(t, ok, "%s: probe port %s is not a container port", where, p.TCPSocket.Port.String())
			default:
				t.Fatalf("%s: probe is neither httpGet nor tcpSocket", where)
			}
		}
		require.NotNil(t, c.SecurityContext, where)
		require.NotNil(t, c.SecurityContext.ReadOnlyRootFilesystem, where)

		if w.kind == "StatefulSet" {
			var sts appsv1.StatefulSet
			for _, s := range m.statefulSets {
				if s.Name == w.name {
					sts = s
				}
			}
			svc, ok := services[sts.Spec.ServiceName]
			require.True(t, ok, "%s: serviceName %q is not defined", where, sts.Spec.ServiceName)
			require.Equal(t, "None", svc.Spec.ClusterIP, "%s: governing service %s must be headless", where, svc.Name)
			require.True(t, selects(svc.Spec.Selector, w.pod.Labels), "%s: service %s does not select its pods", where, svc.Name)
			require.Contains(t, w.claims, "data", "%s: no PVC template for the data directory", where)
			for i := int32(0); i < w.replicas; i++ {
				podDNS[fmt.Sprintf("%s-%d.%s", sts.Name, i, svc.Name)] = true
			}
			// Spread over zones: by topology spread or by zone affinity.
			zoned := false
			for _, tsc := range spec.TopologySpreadConstraints {
				zoned = zoned || tsc.TopologyKey == "topology.kubernetes.io/zone"
			}
			if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
				for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
					for _, e := range term.MatchExpressions {
						zoned = zoned || e.Key == "topology.kubernetes.io/zone"
					}
				}
			}
			require.True(t, zoned, "%s: pods are not spread or pinned by zone", where)
			require.NotNil(t, spec.Affinity, where)
			require.NotNil(t, spec.Affinity.PodAntiAffinity, "%s: no pod anti-affinity", where)
		}
	}

	// Every service and PDB selects some pods, and a service's target
	// ports are named ports of those pods.
	for _, s := range m.services {
		found := false
		for _, w := range m.workloads() {
			if !selects(s.Spec.Selector, w.pod.Labels) {
				continue
			}
			found = true
			names := map[string]bool{}
			for _, p := range w.pod.Spec.Containers[0].Ports {
				names[p.Name] = true
			}
			for _, p := range s.Spec.Ports {
				require.True(t, names[p.TargetPort.String()], "Service %s: target port %s is not a port of %s", s.Name, p.TargetPort.String(), w.name)
			}
		}
		require.True(t, found, "Service %s selects no pods", s.Name)
	}
	for _, p := range m.pdbs {
		found := false
		for _, w := range m.workloads() {
			found = found || selects(p.Spec.Selector.MatchLabels, w.pod.Labels)
		}
		require.True(t, found, "PodDisruptionBudget %s selects no pods", p.Name)
	}
	require.True(t, components["pd"] && components["tablet"] && components["thrift"], "components: %v", components)

	// Host names in the config file and arguments are pods that exist.
	dnsRef := regexp.MustCompile(`([a-z0-9-]+-\d+\.[a-z0-9-]+):\d+`)
	var texts []string
	for _, c := range m.configMaps {
		for _, d := range c.Data {
			texts = append(texts, d)
		}
	}
	for _, w := range m.workloads() {
		texts = append(texts, strings.Join(w.pod.Spec.Containers[0].Args, " "))
	}
	refs := 0
	for _, text := range texts {
		for _, mm := range dnsRef.FindAllStringSubmatch(text, -1) {
			refs++
			require.True(t, podDNS[mm[1]], "%q is not a pod of a StatefulSet (pods: %v)", mm[1], sortedKeys(podDNS))
		}
	}
	require.Positive(t, refs)
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The Kubernetes manifests run secure with certificates from
// cert-manager: every issuer a Certificate names exists (and a CA issuer's
// secret is a CA Certificate's), every pod mounts a certificate's Secret
// and serves with it (the ConfigMap's security section, the gateway's
// flags), nothing runs --insecure, HTTP probes use HTTPS, and the node
// certificate names every pod the configuration and arguments dial.
func TestKubernetesManifestsSecure(t *testing.T) {
	m := loadManifests(t)
	issuers := map[string]cmIssuer{}
	for _, i := range m.issuers {
		issuers[i.Metadata.Name] = i
		require.True(t, (i.Spec.SelfSigned != nil) != (i.Spec.CA != nil), "Issuer %s: selfSigned or ca", i.Metadata.Name)
	}
	secrets := map[string]cmCertificate{}
	for _, c := range m.certificates {
		secrets[c.Spec.SecretName] = c
		_, ok := issuers[c.Spec.IssuerRef.Name]
		require.True(t, ok && c.Spec.IssuerRef.Kind == "Issuer", "Certificate %s: issuer %v is not defined", c.Metadata.Name, c.Spec.IssuerRef)
	}
	for _, i := range m.issuers {
		if i.Spec.CA != nil {
			require.True(t, secrets[i.Spec.CA.SecretName].Spec.IsCA, "Issuer %s: secret %s is not a CA Certificate's", i.Metadata.Name, i.Spec.CA.SecretName)
		}
	}
	var cfg struct {
		Security map[string]string `json:"security"`
	}
	require.Len(t, m.configMaps, 1)
	require.NoError(t, yaml.Unmarshal([]byte(m.configMaps[0].Data["shale.yaml"]), &cfg))
	require.NotContains(t, cfg.Security, "insecure")
	var node *cmCertificate
	for _, w := range m.workloads() {
		where := w.kind + " " + w.name
		c := w.pod.Spec.Containers[0]
		require.NotContains(t, c.Args, "--insecure", where)
		mounts := map[string]string{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.Name] = vm.MountPath
		}
		var dir string
		for _, v := range w.pod.Spec.Volumes {
			if v.Secret == nil {
				continue
			}
			cert, ok := secrets[v.Secret.SecretName]
			require.True(t, ok, "%s: secret %s is no Certificate's", where, v.Secret.SecretName)
			require.Contains(t, cert.Spec.Usages, "server auth", "%s: mounts a certificate that cannot serve", where)
			node, dir = &cert, mounts[v.Name]
		}
		require.NotEmpty(t, dir, "%s: mounts no node certificate", where)
		want := map[string]string{"ca": dir + "/ca.crt", "cert": dir + "/tls.crt", "key": dir + "/tls.key"}
		if c.Args[0] == "thrift" {
			for k, f := range want {
				require.Contains(t, c.Args, fmt.Sprintf("--tls-%s=%s", k, f), where)
			}
		} else {
			require.Equal(t, want, cfg.Security, "%s: the ConfigMap's security section serves another certificate", where)
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if p.HTTPGet != nil {
				require.Equal(t, corev1.URISchemeHTTPS, p.HTTPGet.Scheme, "%s: the status port serves TLS", where)
			}
		}
	}
	require.NotNil(t, node)
	covers := func(host string) bool {
		for _, n := range node.Spec.DNSNames {
			if n == host {
				return true
			}
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				if _, after, found := strings.Cut(host, "."); found && after == rest {
					return true
				}
			}
		}
		return false
	}
	hostRef := regexp.MustCompile(`(?:^|[\s=,])([a-z][a-z0-9-]*(?:\.[a-z0-9-]+)?):\d+`)
	texts := []string{m.configMaps[0].Data["shale.yaml"]}
	for _, w := range m.workloads() {
		texts = append(texts, strings.Join(w.pod.Spec.Containers[0].Args, " "))
	}
	checked := 0
	for _, text := range texts {
		for _, mm := range hostRef.FindAllStringSubmatch(text, -1) {
			checked++
			require.True(t, covers(mm[1]), "the node certificate does not name %q (dnsNames %v)", mm[1], node.Spec.DNSNames)
		}
	}
	require.Positive(t, checked, "no host names found to check")
}

// TestKubernetesStrictDecodingRejects: the strict decoder this test relies
// on rejects a misspelt field, so a typo in a manifest cannot pass.
func TestKubernetesStrictDecodingRejects(t *testing.T) {
	var s appsv1.StatefulSet
	bad := []byte("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {serviceName: x, replica: 3}\n")
	require.Error(t, yaml.UnmarshalStrict(bad, &s))
	dup := []byte("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nmetadata: {name: y}\n")
	require.Error(t, yaml.UnmarshalStrict(dup, &s))
}

// ---- docker-compose.yml, shale.yaml, systemd ----

func TestComposeAndConfigKeys(t *testing.T) {
	data, err := os.ReadFile("shale-secure.yaml")
	require.NoError(t, err)
	checkConfigFile(t, "shale-secure.yaml", data)

	data, err = os.ReadFile("docker-compose.secure.yml")
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Command     []string          `json:"command"`
			Environment map[string]string `json:"environment"`
			Healthcheck struct {
				Test []string `json:"test"`
			} `json:"healthcheck"`
			Volumes   []string       `json:"volumes"`
			DependsOn map[string]any `json:"depends_on"`
			Hostname  string         `json:"hostname"`
			Networks  map[string]struct {
				IPv4 string `json:"ipv4_address"`
			} `json:"networks"`
		} `json:"services"`
	}
	require.NoError(t, yaml.Unmarshal(data, &compose))
	require.Len(t, compose.Services, 12, "3 PD members, 5 tablet servers, the gateway, 3 certificate makers")
	var nodeHosts []string
	if c, ok := compose.Services["certs-node"]; ok {
		nodeHosts = c.Command
	}
	require.NotEmpty(t, nodeHosts, "no certs-node service")
	for name, s := range compose.Services {
		where := "docker-compose.secure.yml service " + name
		checkArgs(t, where, s.Command)
		require.NotContains(t, s.Command, "--insecure", "%s: the deploy manifests run secure", where)
		for k := range s.Environment {
			checkEnv(t, where, k)
		}
		if s.Command[0] == "cert" {
			require.NotContains(t, strings.Join(s.Volumes, " "), "certs:/etc", "%s", where)
			continue
		}
		// A server: its node certificate is mounted, made before it starts,
		// and names its host and address; the CA key is not mounted.
		require.Contains(t, s.Volumes, "certs:/etc/shale/certs:ro", "%s: no certificates mounted", where)
		require.NotContains(t, strings.Join(s.Volumes, " "), "ca:", "%s: the CA key must stay off the servers", where)
		require.Contains(t, s.DependsOn, "certs-node", "%s: starts before its certificate exists", where)
		require.Contains(t, nodeHosts, s.Hostname, "%s: the node certificate does not name its host", where)
		for _, n := range s.Networks {
			require.Contains(t, nodeHosts, n.IPv4, "%s: the node certificate does not name its address", where)
		}
		if s.Command[0] == "thrift" {
			require.Contains(t, s.Command, "--tls-cert=/etc/shale/certs/node.crt", where)
		}
		require.GreaterOrEqual(t, len(s.Healthcheck.Test), 3, "%s: no health check", where)
		require.Equal(t, "/shale", s.Healthcheck.Test[1], where)
		checkArgs(t, where+" healthcheck", s.Healthcheck.Test[2:])
		if s.Healthcheck.Test[2] == "health" && slices.Contains(s.Healthcheck.Test, "--addr") {
			require.Contains(t, s.Healthcheck.Test, "--tls-ca", "%s: the status port serves TLS", where)
		}
	}
	var cfg struct {
		Security map[string]any `json:"security"`
	}
	require.NoError(t, yaml.Unmarshal(mustRead(t, "shale-secure.yaml"), &cfg))
	require.Nil(t, cfg.Security["insecure"], "shale-secure.yaml runs secure")
	for _, k := range []string{"ca", "cert", "key"} {
		require.NotEmpty(t, cfg.Security[k], "shale-secure.yaml: security.%s", k)
	}
}

// The insecure compose file and config of deploy/README.md's quick start
// (the nemesis suite runs the secure pair): every flag, variable and key
// exists. The secure ones are checked by TestComposeAndConfigKeys.
func TestInsecureQuickStartCompose(t *testing.T) {
	data, err := os.ReadFile("shale.yaml")
	require.NoError(t, err)
	checkConfigFile(t, "shale.yaml", data)

	data, err = os.ReadFile("docker-compose.yml")
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Command     []string          `json:"command"`
			Environment map[string]string `json:"environment"`
			Healthcheck struct {
				Test []string `json:"test"`
			} `json:"healthcheck"`
		} `json:"services"`
	}
	require.NoError(t, yaml.Unmarshal(data, &compose))
	require.Len(t, compose.Services, 9, "3 PD members, 5 tablet servers, the gateway")
	for name, s := range compose.Services {
		where := "docker-compose.yml service " + name
		checkArgs(t, where, s.Command)
		for k := range s.Environment {
			checkEnv(t, where, k)
		}
		require.GreaterOrEqual(t, len(s.Healthcheck.Test), 3, "%s: no health check", where)
		require.Equal(t, "/shale", s.Healthcheck.Test[1], where)
		checkArgs(t, where+" healthcheck", s.Healthcheck.Test[2:])
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

func TestSystemdUnits(t *testing.T) {
	units, err := filepath.Glob("systemd/*.service")
	require.NoError(t, err)
	require.Len(t, units, 3)
	for _, u := range units {
		data, err := os.ReadFile(u)
		require.NoError(t, err)
		var exec []string
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
				exec = strings.Fields(v)
			}
			if v, ok := strings.CutPrefix(l, "Environment="); ok {
				name, _, _ := strings.Cut(v, "=")
				checkEnv(t, u, name)
			}
		}
		require.NotEmpty(t, exec, "%s: no ExecStart", u)
		require.NotContains(t, exec, "--insecure", "%s: the deploy manifests run secure", u)
		require.Equal(t, "/usr/local/bin/shale", exec[0], u)
		checkArgs(t, u, exec[1:])
	}
	envs, err := filepath.Glob("systemd/*.env.example")
	require.NoError(t, err)
	require.Len(t, envs, 3)
	for _, f := range envs {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			name, _, ok := strings.Cut(l, "=")
			require.True(t, ok, "%s: %q is not NAME=value", f, l)
			if strings.HasPrefix(name, "SHALE_") {
				checkEnv(t, f, name)
			}
		}
	}
}

// TestHealthCommand: `shale health`, the scratch image's only probe, exits
// 0 on 200 and 1 otherwise, saying why.
func TestHealthCommand(t *testing.T) {
	bin := proctest.Binary(t)
	var status atomic.Int32 // the answer of /healthz
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		code := int(status.Load())
		w.WriteHeader(code)
		fmt.Fprint(w, map[int]string{200: "ok", 503: "not serving"}[code])
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	out, err := exec.Command(bin, "health", "--addr", addr).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "ok")

	status.Store(http.StatusServiceUnavailable)
	out, err = exec.Command(bin, "health", "--addr", addr).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "503")
	require.Contains(t, string(out), "not serving")

	out, err = exec.Command(bin, "health", "--tcp", addr).CombinedOutput()
	require.NoError(t, err, "%s", out)

	closed := proctest.FreeAddr(t)
	out, err = exec.Command(bin, "health", "--tcp", closed).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "connection refused")

	out, err = exec.Command(bin, "health").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "exactly one of --addr or --tcp")
}
