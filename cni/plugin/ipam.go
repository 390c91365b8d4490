package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/containernetworking/cni/pkg/version"
)

// ipamPlugin is the delegated IPAM plugin. ADD, DEL and CHECK speak to it at the network's
// own version first and ask it for its versions (VERSION) only when it refuses that one, so
// the common case costs one exec, as in the reference bridge plugin; STATUS and GC need to
// know whether it speaks 1.1.0 and ask up front (see the package doc).
type ipamPlugin struct {
	Type    string
	Path    string
	Version string   // what ovsmesh sends it: the network's version or the highest older one it supports
	Info    []string // the versions it reports, once asked
	probed  bool     // VERSION has been asked and Version negotiated
	cniPath string
}

// findIPAM locates the IPAM binary in CNI_PATH. A missing binary is a configuration error
// (code 7). It does not exec the binary.
func findIPAM(typ, cniPath, netVersion string) (*ipamPlugin, error) {
	path, err := invoke.FindInPath(typ, filepath.SplitList(cniPath))
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("ipam plugin %q not found in CNI_PATH", typ), err.Error())
	}
	return &ipamPlugin{Type: typ, Path: path, Version: netVersion, cniPath: cniPath}, nil
}

// probe asks the plugin for its versions and settles the version to speak to it.
func (p *ipamPlugin) probe(ctx context.Context) error {
	if p.probed {
		return nil
	}
	info, err := invoke.GetVersionInfo(ctx, p.Path, nil)
	if err != nil {
		return fmt.Errorf("asking ipam plugin %q for its versions: %w", p.Type, err)
	}
	netVersion := p.Version
	v, err := negotiateVersion(netVersion, info.SupportedVersions())
	if err != nil {
		return types.NewError(types.ErrIncompatibleCNIVersion,
			fmt.Sprintf("ipam plugin %q cannot be used with cniVersion %s", p.Type, netVersion), err.Error())
	}
	p.Version, p.Info, p.probed = v, info.SupportedVersions(), true
	return nil
}

// negotiateVersion picks the version to speak to a delegate: the network's own version if
// the delegate supports it, else the highest supported version below it. Versions older
// than 0.3.0 are refused: their results carry no interfaces and cannot be converted.
func negotiateVersion(netVersion string, supported []string) (string, error) {
	best := ""
	for _, v := range supported {
		if v == netVersion {
			return v, nil
		}
		older, err := version.GreaterThan(netVersion, v)
		if err != nil || !older {
			continue
		}
		if ok, _ := version.GreaterThanOrEqualTo(v, "0.3.0"); !ok {
			continue
		}
		if best == "" {
			best = v
		} else if newer, _ := version.GreaterThan(v, best); newer {
			best = v
		}
	}
	if best == "" {
		return "", fmt.Errorf("it supports %v, none of them at or below %s and at least 0.3.0", supported, netVersion)
	}
	return best, nil
}

// SupportsStatusAndGC says whether the delegate understands STATUS and GC (spec 1.1.0).
func (p *ipamPlugin) SupportsStatusAndGC(ctx context.Context) (bool, error) {
	if err := p.probe(ctx); err != nil {
		return false, err
	}
	ok, _ := version.GreaterThanOrEqualTo(p.Version, "1.1.0")
	return ok, nil
}

// rewriteVersion sets cniVersion to v and converts an embedded prevResult to v, keeping every
// other key byte for byte. It is a no-op when the config already has version v.
func rewriteVersion(conf []byte, v string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(conf, &m); err != nil {
		return nil, err
	}
	var cur string
	if raw, ok := m["cniVersion"]; ok {
		if err := json.Unmarshal(raw, &cur); err != nil {
			return nil, fmt.Errorf("cniVersion: %w", err)
		}
	}
	if cur == v {
		return conf, nil
	}
	m["cniVersion"], _ = json.Marshal(v)
	if raw, ok := m["prevResult"]; ok && string(raw) != "null" {
		prev, err := create.CreateFromBytes(withVersion(raw, cur))
		if err != nil {
			return nil, fmt.Errorf("prevResult: %w", err)
		}
		conv, err := prev.GetAsVersion(v)
		if err != nil {
			return nil, fmt.Errorf("converting prevResult to %s: %w", v, err)
		}
		if m["prevResult"], err = json.Marshal(conv); err != nil {
			return nil, err
		}
	}
	return json.Marshal(m)
}

// withVersion gives a prevResult without its own cniVersion the config's version, as libcni does.
func withVersion(raw json.RawMessage, v string) []byte {
	var probe struct {
		CNIVersion string `json:"cniVersion"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.CNIVersion != "" {
		return raw
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	m["cniVersion"], _ = json.Marshal(v)
	out, _ := json.Marshal(m)
	return out
}

func (p *ipamPlugin) args(cmd string, a *skel.CmdArgs) *invoke.Args {
	return &invoke.Args{
		Command:       cmd,
		ContainerID:   a.ContainerID,
		NetNS:         a.Netns,
		PluginArgsStr: a.Args,
		IfName:        a.IfName,
		Path:          p.cniPath,
	}
}

// Add runs IPAM ADD and returns its result in the current (1.1.0) format.
func (p *ipamPlugin) Add(ctx context.Context, conf []byte, a *skel.CmdArgs) (*current.Result, error) {
	r, err := p.exec(ctx, "ADD", conf, p.args("ADD", a), true)
	if err != nil {
		return nil, err
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("converting the result of ipam plugin %q: %w", p.Type, err)
	}
	return res, nil
}

// Del runs IPAM DEL for the attachment in a (GC passes synthesized args).
func (p *ipamPlugin) Del(ctx context.Context, conf []byte, a *skel.CmdArgs) error {
	_, err := p.exec(ctx, "DEL", conf, p.args("DEL", a), false)
	return err
}

// Check runs IPAM CHECK.
func (p *ipamPlugin) Check(ctx context.Context, conf []byte, a *skel.CmdArgs) error {
	_, err := p.exec(ctx, "CHECK", conf, p.args("CHECK", a), false)
	return err
}

// Status runs IPAM STATUS; callers check SupportsStatusAndGC first.
func (p *ipamPlugin) Status(ctx context.Context, conf []byte) error {
	_, err := p.exec(ctx, "STATUS", conf, &invoke.Args{Command: "STATUS", Path: p.cniPath}, false)
	return err
}

// GC runs IPAM GC; callers check SupportsStatusAndGC first.
func (p *ipamPlugin) GC(ctx context.Context, conf []byte) error {
	_, err := p.exec(ctx, "GC", conf, &invoke.Args{Command: "GC", Path: p.cniPath}, false)
	return err
}

// exec runs one verb. When the plugin refuses the version it was sent (code 1) before
// ovsmesh asked which it supports, ovsmesh asks, and retries once at the negotiated version:
// a plugin that refuses the version has done nothing, so the retry cannot double an ADD.
func (p *ipamPlugin) exec(ctx context.Context, cmd string, conf []byte, args *invoke.Args, withResult bool) (types.Result, error) {
	for {
		in, err := rewriteVersion(conf, p.Version)
		if err != nil {
			return nil, err
		}
		var r types.Result
		if withResult {
			r, err = invoke.ExecPluginWithResult(ctx, p.Path, in, args, nil)
		} else {
			err = invoke.ExecPluginWithoutResult(ctx, p.Path, in, args, nil)
		}
		if err == nil {
			return r, nil
		}
		var te *types.Error
		if p.probed || !errors.As(err, &te) || te.Code != types.ErrIncompatibleCNIVersion {
			return nil, p.wrap(cmd, err)
		}
		sent := p.Version
		if perr := p.probe(ctx); perr != nil {
			return nil, perr
		}
		if p.Version == sent {
			return nil, p.wrap(cmd, err) // it supports what it refused: nothing to retry with
		}
	}
}

// wrap keeps the delegate's error code (a runtime may act on it) and says where it came from.
func (p *ipamPlugin) wrap(cmd string, err error) error {
	var te *types.Error
	if errors.As(err, &te) {
		return types.NewError(te.Code, fmt.Sprintf("ipam plugin %q %s: %s", p.Type, cmd, te.Msg), te.Details)
	}
	return fmt.Errorf("ipam plugin %q %s: %w", p.Type, cmd, err)
}
