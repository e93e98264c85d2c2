package bdev

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-storage/sluice/actors"
	"github.com/sluice-storage/sluice/reactors"
)

func TestDebugSource(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	s.fakeBdev(t, "f0", newFake(512, 64, Info{IOTypes: IOTypesOf(IORead, IOWrite)}), 64)
	d := s.open(t, "f0", true)
	if err := s.reg.Claim(d, "crypt0"); err != nil {
		t.Fatal(err)
	}
	sys := actors.NewSystem(s.set, actors.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { sys.Shutdown(waitTimeout) })
	dbg := actors.NewDebug(sys)
	if err := dbg.Register(s.reg.Source()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dbg.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/debug/bdevs")
	if err != nil {
		t.Fatal(err)
	}
	var views []BdevView
	err = json.NewDecoder(resp.Body).Decode(&views)
	resp.Body.Close()
	want := BdevView{Name: "f0", UUID: views[0].UUID, BlockSize: 512, Blocks: 64, IOTypes: "read,write,reset,compare,compare-and-write",
		Writers: 1, Claimer: "crypt0"}
	if err != nil || len(views) != 1 || views[0] != want {
		t.Errorf("/debug/bdevs: %v %+v, want [%+v]", err, views, want)
	}
	for path, wants := range map[string][]string{
		"/metrics": {`sluice_bdev_size_bytes{bdev="f0",driver="",block_size="512"} 32768`,
			`sluice_bdev_descriptors{bdev="f0",mode="write"} 1`, `sluice_bdev_claimed{bdev="f0",driver="",block_size="512"} 1`},
	} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range wants {
			if !strings.Contains(string(body), want) {
				t.Errorf("GET %s lacks %s:\n%s", path, want, body)
			}
		}
	}
}
