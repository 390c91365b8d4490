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

// ipamPlugin is the delegated IPAM plugin, found once per invocation with the spec version
// to speak to it already negotiated (see the package doc for why).
type ipamPlugin struct {
	Type    string
	Path    string
	Version string   // what ovsmesh sends it: the network's version or the highest older one it supports
	Info    []string // the versions it reports
	cniPath string
}

// findIPAM locates the IPAM binary in CNI_PATH and asks it which versions it supports.
// A missing binary is a configuration error (code 7).
func findIPAM(ctx context.Context, typ, cniPath, netVersion string) (*ipamPlugin, error) {
	path, err := invoke.FindInPath(typ, filepath.SplitList(cniPath))
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("ipam plugin %q not found in CNI_PATH", typ), err.Error())
	}
	info, err := invoke.GetVersionInfo(ctx, path, nil)
	if err != nil {
		return nil, fmt.Errorf("asking ipam plugin %q for its versions: %w", typ, err)
	}
	v, err := negotiateVersion(netVersion, info.SupportedVersions())
	if err != nil {
		return nil, types.NewError(types.ErrIncompatibleCNIVersion,
			fmt.Sprintf("ipam plugin %q cannot be used with cniVersion %s", typ, netVersion), err.Error())
	}
	return &ipamPlugin{Type: typ, Path: path, Version: v, Info: info.SupportedVersions(), cniPath: cniPath}, nil
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
func (p *ipamPlugin) SupportsStatusAndGC() bool {
	ok, _ := version.GreaterThanOrEqualTo(p.Version, "1.1.0")
	return ok
}

// stdin rewrites the network config for the delegate's version.
func (p *ipamPlugin) stdin(conf []byte) ([]byte, error) {
	return rewriteVersion(conf, p.Version)
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
	in, err := p.stdin(conf)
	if err != nil {
		return nil, err
	}
	r, err := invoke.ExecPluginWithResult(ctx, p.Path, in, p.args("ADD", a), nil)
	if err != nil {
		return nil, p.wrap("ADD", err)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("converting the result of ipam plugin %q: %w", p.Type, err)
	}
	return res, nil
}

// Del runs IPAM DEL for the attachment in a (GC passes synthesized args).
func (p *ipamPlugin) Del(ctx context.Context, conf []byte, a *skel.CmdArgs) error {
	return p.noResult(ctx, "DEL", conf, p.args("DEL", a))
}

// Check runs IPAM CHECK.
func (p *ipamPlugin) Check(ctx context.Context, conf []byte, a *skel.CmdArgs) error {
	return p.noResult(ctx, "CHECK", conf, p.args("CHECK", a))
}

// Status runs IPAM STATUS; callers check SupportsStatusAndGC first.
func (p *ipamPlugin) Status(ctx context.Context, conf []byte) error {
	return p.noResult(ctx, "STATUS", conf, &invoke.Args{Command: "STATUS", Path: p.cniPath})
}

// GC runs IPAM GC; callers check SupportsStatusAndGC first.
func (p *ipamPlugin) GC(ctx context.Context, conf []byte) error {
	return p.noResult(ctx, "GC", conf, &invoke.Args{Command: "GC", Path: p.cniPath})
}

func (p *ipamPlugin) noResult(ctx context.Context, cmd string, conf []byte, args *invoke.Args) error {
	in, err := p.stdin(conf)
	if err != nil {
		return err
	}
	if err := invoke.ExecPluginWithoutResult(ctx, p.Path, in, args, nil); err != nil {
		return p.wrap(cmd, err)
	}
	return nil
}

// wrap keeps the delegate's error code (a runtime may act on it) and says where it came from.
func (p *ipamPlugin) wrap(cmd string, err error) error {
	var te *types.Error
	if errors.As(err, &te) {
		return types.NewError(te.Code, fmt.Sprintf("ipam plugin %q %s: %s", p.Type, cmd, te.Msg), te.Details)
	}
	return fmt.Errorf("ipam plugin %q %s: %w", p.Type, cmd, err)
}
