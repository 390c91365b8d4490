package harness

import "testing"

func TestParseSTPShow(t *testing.T) {
	out := `---- obr0 ----
Root ID:
  stp-priority    32768
  stp-sys-id      02:00:00:00:01:01

  Interface    Role       State      Cost     Pri.Nbr
  ------------ ---------- ---------- -------- -------
  gre-ac1e00   designated forwarding 100      128.2
  gre-ac1e00   alternate  blocking   100      128.3
  vobr0        designated forwarding 100      128.1
`
	got := parseSTPShow(out)
	want := map[string]string{"gre-ac1e00@128.2": "designated/forwarding", "gre-ac1e00@128.3": "alternate/blocking", "vobr0@128.1": "designated/forwarding"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestParseReceived(t *testing.T) {
	for out, want := range map[string]int{
		"3 packets transmitted, 3 received, 0% packet loss, time 401ms": 3,
		"3 packets transmitted, 0 received, 100% packet loss":           0,
		"ping: connect: Network is unreachable":                         -1,
	} {
		if got := parseReceived(out); got != want {
			t.Errorf("parseReceived(%q) = %d, want %d", out, got, want)
		}
	}
}

func TestPingSummary(t *testing.T) {
	out := "PING 10.244.2.2 (10.244.2.2) 56(84) bytes of data.\n\n--- 10.244.2.2 ping statistics ---\n164 packets transmitted, 21 received, 87.1951% packet loss, time 8213ms\n"
	if sent, got, ok := PingSummary(out); !ok || sent != 164 || got != 21 {
		t.Errorf("PingSummary = %d %d %v", sent, got, ok)
	}
	if _, _, ok := PingSummary("ping: connect: Network is unreachable"); ok {
		t.Error("PingSummary found a summary in an error")
	}
}
