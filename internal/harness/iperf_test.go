package harness

import "testing"

func TestParseIperf3(t *testing.T) {
	out := `iperf3: some warning
{"start":{},"end":{"sum_sent":{"bytes":200,"retransmits":3},"sum_received":{"bytes":152200000,"bits_per_second":405000000.5}}}`
	r, err := ParseIperf3(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.BytesReceived != 152200000 || r.BitsPerSecond != 405000000.5 || r.Retransmits != 3 {
		t.Errorf("ParseIperf3 = %+v", r)
	}
	for _, bad := range []string{"iperf3: error - unable to connect", `{"end":`} {
		if _, err := ParseIperf3(bad); err == nil {
			t.Errorf("ParseIperf3(%q) succeeded", bad)
		}
	}
}
