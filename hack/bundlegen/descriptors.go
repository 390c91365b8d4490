package main

import (
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/operator-framework/api/pkg/operators/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// ownedCRDs completes the CSV's owned CRD list from the CRDs config/ renders. The base CSV
// holds what only a person can write (display names, x-descriptors, the kinds a CR creates);
// the schema holds the rest:
//   - a CRD missing from the base gets an entry (display name from its kind);
//   - empty descriptions are taken from the schema, for the CRD and for every descriptor;
//   - every top-level spec and status field gets a descriptor, so the console and the
//     scorecard's olm-spec/status-descriptors tests see every field;
//   - a descriptor whose path is not in the schema, a base entry with no CRD, or a version
//     the CRD does not serve is an error: the base has drifted from the API.
func ownedCRDs(base []v1alpha1.CRDDescription, crds []*apiextensionsv1.CustomResourceDefinition) ([]v1alpha1.CRDDescription, error) {
	byName := map[string]v1alpha1.CRDDescription{}
	for _, d := range base {
		if _, dup := byName[d.Name]; dup {
			return nil, fmt.Errorf("base CSV lists owned CRD %s twice", d.Name)
		}
		byName[d.Name] = d
	}
	var out []v1alpha1.CRDDescription
	for _, crd := range crds {
		d, inBase := byName[crd.Name]
		delete(byName, crd.Name)
		if !inBase {
			d = v1alpha1.CRDDescription{Name: crd.Name, Kind: crd.Spec.Names.Kind, DisplayName: words(crd.Spec.Names.Kind)}
		}
		if d.Kind != crd.Spec.Names.Kind {
			return nil, fmt.Errorf("owned CRD %s: base CSV says kind %q, the CRD says %q", crd.Name, d.Kind, crd.Spec.Names.Kind)
		}
		var version *apiextensionsv1.CustomResourceDefinitionVersion
		for i := range crd.Spec.Versions {
			v := &crd.Spec.Versions[i]
			if (d.Version == "" && v.Storage) || v.Name == d.Version {
				version = v
			}
		}
		if version == nil || !version.Served {
			return nil, fmt.Errorf("owned CRD %s: version %q is not served by the CRD", crd.Name, d.Version)
		}
		d.Version = version.Name
		if version.Schema == nil || version.Schema.OpenAPIV3Schema == nil {
			return nil, fmt.Errorf("owned CRD %s %s has no schema", crd.Name, version.Name)
		}
		root := version.Schema.OpenAPIV3Schema
		if d.Description == "" {
			d.Description = firstParagraph(root.Description)
		}
		spec, status := root.Properties["spec"], root.Properties["status"]
		var err error
		if d.SpecDescriptors, err = completeSpec(crd.Name, d.SpecDescriptors, &spec); err != nil {
			return nil, err
		}
		if d.StatusDescriptors, err = completeStatus(crd.Name, d.StatusDescriptors, &status); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	for name := range byName {
		return nil, fmt.Errorf("base CSV owns CRD %s, which config/ does not render", name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// descriptor is the part spec and status descriptors share.
type descriptor struct{ path, displayName, description *string }

func completeSpec(crd string, ds []v1alpha1.SpecDescriptor, schema *apiextensionsv1.JSONSchemaProps) ([]v1alpha1.SpecDescriptor, error) {
	views := make([]descriptor, len(ds))
	for i := range ds {
		views[i] = descriptor{&ds[i].Path, &ds[i].DisplayName, &ds[i].Description}
	}
	missing, err := complete(crd+" spec", views, schema)
	for _, p := range missing {
		ds = append(ds, v1alpha1.SpecDescriptor{Path: p, DisplayName: fieldName(p), Description: firstParagraph(schema.Properties[p].Description)})
	}
	return ds, err
}

func completeStatus(crd string, ds []v1alpha1.StatusDescriptor, schema *apiextensionsv1.JSONSchemaProps) ([]v1alpha1.StatusDescriptor, error) {
	views := make([]descriptor, len(ds))
	for i := range ds {
		views[i] = descriptor{&ds[i].Path, &ds[i].DisplayName, &ds[i].Description}
	}
	missing, err := complete(crd+" status", views, schema)
	for _, p := range missing {
		ds = append(ds, v1alpha1.StatusDescriptor{Path: p, DisplayName: fieldName(p), Description: firstParagraph(schema.Properties[p].Description)})
	}
	return ds, err
}

// complete checks each descriptor's path against schema, fills empty descriptions from it,
// and returns the top-level fields that have no descriptor, sorted.
func complete(what string, ds []descriptor, schema *apiextensionsv1.JSONSchemaProps) ([]string, error) {
	seen := map[string]bool{}
	for _, d := range ds {
		if seen[*d.path] {
			return nil, fmt.Errorf("%s: two descriptors for path %q", what, *d.path)
		}
		seen[*d.path] = true
		field, err := lookup(schema, *d.path)
		if err != nil {
			return nil, fmt.Errorf("%s descriptor %q: %w", what, *d.path, err)
		}
		if *d.description == "" {
			*d.description = firstParagraph(field.Description)
		}
		if *d.displayName == "" {
			*d.displayName = fieldName((*d.path)[strings.LastIndex(*d.path, ".")+1:])
		}
	}
	var missing []string
	for name := range schema.Properties {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	return missing, nil
}

// lookup resolves a descriptor path ("tunnel.type", "peers[0].state") in a schema.
func lookup(schema *apiextensionsv1.JSONSchemaProps, path string) (*apiextensionsv1.JSONSchemaProps, error) {
	cur := schema
	for _, seg := range strings.Split(path, ".") {
		name, index, _ := strings.Cut(seg, "[")
		next, ok := cur.Properties[name]
		if !ok {
			return nil, fmt.Errorf("field %q is not in the CRD schema", name)
		}
		cur = &next
		if index != "" {
			if cur.Items == nil || cur.Items.Schema == nil {
				return nil, fmt.Errorf("field %q is not a list", name)
			}
			cur = cur.Items.Schema
		}
	}
	return cur, nil
}

// firstParagraph shortens a Go doc comment turned schema description to what fits a form's
// help text: its first paragraph, on one line.
func firstParagraph(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n\n")
	return strings.Join(strings.Fields(s), " ")
}

// words makes a display name from a kind or field name: "NodeSubnet" -> "Node Subnet",
// "nodeSubnetPrefixLength" -> "Node Subnet Prefix Length", "observedGeneration" ->
// "Observed Generation". Runs of capitals stay together ("clusterCIDR" -> "Cluster CIDR").
func words(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) && (unicode.IsLower(r[i-1]) || (i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]))) {
			b.WriteByte(' ')
		}
		if i == 0 {
			c = unicode.ToUpper(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fieldName is words in sentence case, as the base CSV writes field display names:
// "nodeSubnetPrefixLength" -> "Node subnet prefix length", "clusterCIDR" -> "Cluster CIDR".
func fieldName(s string) string {
	w := strings.Fields(words(s))
	for i := 1; i < len(w); i++ {
		if w[i] != strings.ToUpper(w[i]) || len(w[i]) == 1 {
			w[i] = strings.ToLower(w[i])
		}
	}
	return strings.Join(w, " ")
}
