package main

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/operator-framework/api/pkg/operators/v1alpha1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// rbacResult is what the install strategy takes from config/rbac, and what stays behind.
type rbacResult struct {
	permissions        []v1alpha1.StrategyDeploymentPermissions // from Roles (and ClusterRoles bound by RoleBindings)
	clusterPermissions []v1alpha1.StrategyDeploymentPermissions // from ClusterRoles bound by ClusterRoleBindings
	// rest are RBAC objects that are not the operator's own (say, a viewer ClusterRole for
	// users): they go into the bundle as they are.
	rest []*unstructured.Unstructured
}

// installPermissions turns the RBAC of config/ into the CSV's permissions, the way OLM will
// turn them back: every Role or ClusterRole bound to the ServiceAccount of an operator
// Deployment (in the install namespace ns) becomes a rules entry for that ServiceAccount, and
// the bindings and the ServiceAccount itself are dropped, because OLM creates them. A
// ClusterRoleBinding becomes clusterPermissions; a RoleBinding becomes permissions (namespaced
// to the install namespace by OLM) whether it refers to a Role or a ClusterRole.
//
// Rules of several roles for one ServiceAccount are concatenated in binding-name order, so the
// result depends only on config/, not on kustomize's output order.
func installPermissions(objs []*unstructured.Unstructured, ns string, serviceAccounts map[string]bool) (*rbacResult, error) {
	roles := map[string]*rbacv1.Role{}               // namespace/name
	clusterRoles := map[string]*rbacv1.ClusterRole{} // name
	var roleBindings []*rbacv1.RoleBinding
	var clusterRoleBindings []*rbacv1.ClusterRoleBinding
	byKey := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		byKey[key(u)] = u
		var err error
		switch u.GetKind() {
		case "Role":
			r := &rbacv1.Role{}
			err = fromUnstructured(u, r)
			roles[r.Namespace+"/"+r.Name] = r
		case "ClusterRole":
			r := &rbacv1.ClusterRole{}
			err = fromUnstructured(u, r)
			clusterRoles[r.Name] = r
		case "RoleBinding":
			b := &rbacv1.RoleBinding{}
			err = fromUnstructured(u, b)
			roleBindings = append(roleBindings, b)
		case "ClusterRoleBinding":
			b := &rbacv1.ClusterRoleBinding{}
			err = fromUnstructured(u, b)
			clusterRoleBindings = append(clusterRoleBindings, b)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key(u), err)
		}
	}
	sort.Slice(roleBindings, func(i, j int) bool { return roleBindings[i].Name < roleBindings[j].Name })
	sort.Slice(clusterRoleBindings, func(i, j int) bool { return clusterRoleBindings[i].Name < clusterRoleBindings[j].Name })

	// boundSA returns the operator ServiceAccount a binding grants to, or "" when the binding
	// is for someone else. A binding mixing the operator with other subjects cannot be split
	// into a CSV entry and a plain binding without changing its meaning: refuse it.
	boundSA := func(what string, subjects []rbacv1.Subject) (string, error) {
		var sa string
		for _, s := range subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == ns && serviceAccounts[s.Name] {
				if sa != "" && sa != s.Name {
					return "", fmt.Errorf("%s binds two operator ServiceAccounts; use one binding per ServiceAccount", what)
				}
				sa = s.Name
			}
		}
		if sa != "" && len(subjects) > 1 {
			return "", fmt.Errorf("%s binds the operator ServiceAccount %s together with other subjects; split it", what, sa)
		}
		return sa, nil
	}

	perms := map[string][]rbacv1.PolicyRule{}
	clusterPerms := map[string][]rbacv1.PolicyRule{}
	used := map[string]bool{} // keys of objects folded into the CSV
	refs := map[string]int{}  // role key -> bindings that stay in the bundle and refer to it

	for _, b := range clusterRoleBindings {
		what := "ClusterRoleBinding/" + b.Name
		sa, err := boundSA(what, b.Subjects)
		if err != nil {
			return nil, err
		}
		if sa == "" {
			refs["ClusterRole/"+b.RoleRef.Name]++
			continue
		}
		r, ok := clusterRoles[b.RoleRef.Name]
		if !ok {
			return nil, fmt.Errorf("%s grants ClusterRole %s, which config/ does not define: the CSV needs its rules", what, b.RoleRef.Name)
		}
		clusterPerms[sa] = append(clusterPerms[sa], r.Rules...)
		used[what], used["ClusterRole/"+r.Name] = true, true
	}
	for _, b := range roleBindings {
		what := fmt.Sprintf("RoleBinding/%s/%s", b.Namespace, b.Name)
		sa, err := boundSA(what, b.Subjects)
		if err != nil {
			return nil, err
		}
		roleKey := fmt.Sprintf("Role/%s/%s", b.Namespace, b.RoleRef.Name)
		if b.RoleRef.Kind == "ClusterRole" {
			roleKey = "ClusterRole/" + b.RoleRef.Name
		}
		if sa == "" {
			refs[roleKey]++
			continue
		}
		if b.Namespace != ns {
			return nil, fmt.Errorf("%s grants the operator rights in namespace %s, but OLM only grants permissions in the install namespace %s", what, b.Namespace, ns)
		}
		var rules []rbacv1.PolicyRule
		if b.RoleRef.Kind == "ClusterRole" {
			r, ok := clusterRoles[b.RoleRef.Name]
			if !ok {
				return nil, fmt.Errorf("%s grants ClusterRole %s, which config/ does not define: the CSV needs its rules", what, b.RoleRef.Name)
			}
			rules = r.Rules
		} else {
			r, ok := roles[b.Namespace+"/"+b.RoleRef.Name]
			if !ok {
				return nil, fmt.Errorf("%s grants Role %s, which config/ does not define", what, b.RoleRef.Name)
			}
			rules = r.Rules
		}
		perms[sa] = append(perms[sa], rules...)
		used[what], used[roleKey] = true, true
	}

	res := &rbacResult{
		permissions:        toStrategyPermissions(perms),
		clusterPermissions: toStrategyPermissions(clusterPerms),
	}
	for sa := range serviceAccounts {
		if len(perms[sa]) == 0 && len(clusterPerms[sa]) == 0 {
			return nil, fmt.Errorf("the operator Deployment runs as ServiceAccount %s, but no Role or ClusterRole in config/ is bound to it: OLM would not create it", sa)
		}
	}
	for _, u := range objs {
		k := key(u)
		switch {
		case u.GetKind() == "ServiceAccount" && u.GetNamespace() == ns && serviceAccounts[u.GetName()]:
			// OLM creates the ServiceAccounts named in the CSV; the bundle must not hold them.
		case used[k] && refs[k] == 0:
		default:
			res.rest = append(res.rest, byKey[k])
		}
	}
	return res, nil
}

func toStrategyPermissions(m map[string][]rbacv1.PolicyRule) []v1alpha1.StrategyDeploymentPermissions {
	var out []v1alpha1.StrategyDeploymentPermissions
	for sa, rules := range m {
		out = append(out, v1alpha1.StrategyDeploymentPermissions{ServiceAccountName: sa, Rules: rules})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ServiceAccountName < out[j].ServiceAccountName })
	return out
}

// fromUnstructured converts through JSON, so that types with their own JSON encoding (the
// CSV's version, quantities) decode as the API server would decode them.
func fromUnstructured(u *unstructured.Unstructured, into any) error {
	js, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	return json.Unmarshal(js, into)
}

// toUnstructured is the inverse of fromUnstructured.
func toUnstructured(obj any) (map[string]any, error) {
	js, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, err
	}
	return m, nil
}
