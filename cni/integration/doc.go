// Package integration holds the ovsmesh CNI plugin's end-to-end tests: the plugin binary is
// built fresh and driven the way a container runtime drives it, through libcni, with the
// real host-local and portmap binaries, inside network namespaces the tests create (a
// "node" netns holding the bridge, and one netns per pod), so nothing touches the root
// network namespace. The tests need root.
package integration
