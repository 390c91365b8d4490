package ovs

import (
	"reflect"
	"testing"
)

func TestParseDpifShow(t *testing.T) {
	out := `netdev@ovs-netdev: hit:0 missed:0
  br-phy:
    br-phy 65534/4: (tap)
    eth0 1/5: (system)
  obr0:
    gre-ac1e0002 1/2: (gre: remote_ip=172.30.0.2)
    gre-ac1e0003 2/2: (gre: remote_ip=172.30.0.3)
    obr0 65534/1: (tap)
    vobr0 3/3: (system)
`
	got := parseDpifShow(out, "obr0")
	want := map[int]string{1: "obr0", 3: "vobr0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("obr0 ports %v, want %v", got, want)
	}
}
