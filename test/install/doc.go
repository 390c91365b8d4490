// Package install holds the install-path tests of ovsmesh: the two ways a user installs it,
// run against a real etcd + kube-apiserver (envtest, binaries from `make testbed`):
//
//   - `kubectl apply --server-side -k config/default`, the sample NetworkCluster, and
//     `kubectl delete -k config/default` (TestKubectlInstallPath);
//   - the OLM bundle in bundle/: its CRDs, and its CSV's Deployment and permissions rendered
//     into the plain objects OLM's install strategy creates (TestOLMBundleInstallPath).
//
// No ovsmesh controller runs: these tests prove the manifests are accepted, complete and
// removable, not that the operator works (the end-to-end tests do that).
package install
