package v1alpha1

// VethNames derives the two veth ends from the bridge names: "v"+bridge, cut to the 15
// characters Linux allows (vobr0 in obr0, vkbr0 in kbr0). If the cut makes them equal, the
// Linux end gets a distinct last character. The agent creates them; admission refuses bridge
// names that collide with them; kubectl ovsmesh trace follows packets through them.
func VethNames(ovsBridge, linuxBridge string) (ovsEnd, linuxEnd string) {
	ovsEnd, linuxEnd = cut15("v"+ovsBridge), cut15("v"+linuxBridge)
	if ovsEnd == linuxEnd {
		last := byte('k')
		if ovsEnd[len(ovsEnd)-1] == last {
			last = 'l'
		}
		linuxEnd = linuxEnd[:len(linuxEnd)-1] + string(last)
	}
	return ovsEnd, linuxEnd
}

func cut15(s string) string {
	if len(s) > 15 {
		return s[:15]
	}
	return s
}
