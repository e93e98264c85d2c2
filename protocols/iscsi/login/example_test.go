package login_test

import (
	"crypto/rand"
	"fmt"

	"github.com/sluice-storage/sluice/protocols/iscsi/login"
	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
)

type oneTarget struct{ t login.Target }

func (d *oneTarget) Target(name string) (*login.Target, bool) { return &d.t, name == d.t.Name }
func (d *oneTarget) Permit(string, string) bool               { return true }
func (d *oneTarget) SessionExists(string, login.ISID, uint16) bool {
	return false
}
func (d *oneTarget) NewTSIH() (uint16, bool) { return 1, true }

// Example shows the glue a connection runs for each Login Request: decode the BHS
// with package pdu, Step, encode the Login Response, act on the Action.
func Example() {
	cfg := &login.Config{
		Limits:         login.DefaultLimits(),
		PortalGroupTag: 1,
		CHAPAlgorithms: []login.CHAPAlgorithm{login.CHAPSHA256, login.CHAPMD5},
		Rand:           rand.Reader,
	}
	m := login.New(cfg, &oneTarget{login.Target{Name: "iqn.2024-01.io.sluice:disk1"}})

	// What the framer would hand over: a Login Request header and its data segment.
	var text []byte
	text = login.AppendPair(text, "InitiatorName", "iqn.1994-05.com.redhat:init1")
	text = login.AppendPair(text, "TargetName", "iqn.2024-01.io.sluice:disk1")
	text = login.AppendPair(text, "HeaderDigest", "CRC32C,None")
	var in pdu.BHS
	lr := in.InitLoginRequest()
	lr.SetTransit(true)
	lr.SetStages(pdu.StageOperationalNegotiation, pdu.StageFullFeature)
	lr.SetISID([6]byte{0x80, 0, 0, 0, 0, 1})
	lr.BHS().SetDataSegmentLength(uint32(len(text)))
	if err := in.Check(pdu.RoleTarget, pdu.Limits{MaxRecvDataSegmentLength: 8192}); err != nil {
		panic(err) // a real connection answers Login Response 0x0200 and closes
	}

	resp, action := m.Step(login.Request{
		Transit: lr.Transit(), Continue: lr.Continue(),
		CSG: login.Stage(lr.CSG()), NSG: login.Stage(lr.NSG()),
		VersionMax: lr.VersionMax(), VersionMin: lr.VersionMin(),
		ISID: login.ISID(lr.ISID()), TSIH: lr.TSIH(), CID: lr.CID(),
		Data: text,
	})

	var out pdu.BHS
	rsp := out.InitLoginResponse()
	rsp.SetTransit(resp.Transit)
	rsp.SetContinue(resp.Continue)
	rsp.SetStages(pdu.Stage(resp.CSG), pdu.Stage(resp.NSG))
	rsp.SetVersions(resp.VersionMax, resp.VersionActive)
	rsp.SetISID(lr.ISID())
	rsp.SetTSIH(resp.TSIH)
	rsp.BHS().SetITT(in.ITT())
	rsp.SetStatus(pdu.LoginStatus(resp.Status))
	rsp.BHS().SetDataSegmentLength(uint32(len(resp.Data)))

	keys, _ := login.ParseKeys(resp.Data)
	fmt.Println(rsp.Status().Class(), rsp.Transit(), rsp.NSG() == pdu.StageFullFeature, rsp.TSIH(), action)
	fmt.Println(keys)
	fmt.Println("header digest:", m.Params().HeaderDigest)
	// Output:
	// 0 true true 1 full-feature
	// [{TargetPortalGroupTag 1} {MaxRecvDataSegmentLength 8192} {HeaderDigest CRC32C}]
	// header digest: true
}
