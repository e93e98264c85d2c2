package bdev

import (
	"strconv"

	"github.com/sluice-storage/sluice/actors"
)

// BdevView is one bdev on the debug endpoint (/debug/bdevs).
type BdevView struct {
	Name         string `json:"name"`
	Driver       string `json:"driver"`
	UUID         string `json:"uuid"`
	BlockSize    uint32 `json:"block_size"`
	Blocks       uint64 `json:"blocks"`
	MetadataSize uint32 `json:"metadata_size"`
	IOTypes      string `json:"io_types"`
	Owner        int    `json:"owner_reactor"`
	Writers      int    `json:"writers"`
	Readers      int    `json:"readers"`
	Claimer      string `json:"claimed_by"`
}

// Source is the registry's view for the debug endpoint; cmd/sluice
// registers it with actors.Debug.Register.
func (reg *Registry) Source() actors.Source { return registrySource{reg} }

type registrySource struct{ reg *Registry }

func (s registrySource) Name() string { return "bdevs" }

// Snapshot lists the bdevs in creation order. Control plane: it takes the
// registry's lock, never a reactor's state.
func (s registrySource) Snapshot() any {
	reg := s.reg
	reg.mu.Lock()
	defer reg.mu.Unlock()
	views := make([]BdevView, 0, len(reg.order))
	for _, b := range reg.order {
		views = append(views, BdevView{
			Name: b.name, Driver: b.driver, UUID: b.uuid.String(), BlockSize: b.blockSize,
			Blocks: b.blocks, MetadataSize: b.metadataSize, IOTypes: b.IOTypes().String(),
			Owner: b.owner.Index(), Writers: b.writers, Readers: b.readers, Claimer: b.claimer,
		})
	}
	return views
}

// WriteMetrics writes each bdev's size and descriptors.
func (s registrySource) WriteMetrics(w *actors.MetricsWriter) {
	views := s.Snapshot().([]BdevView)
	families := []struct {
		name, help string
		get        func(*BdevView) float64
	}{
		{"sluice_bdev_size_bytes", "Capacity.", func(v *BdevView) float64 { return float64(v.Blocks) * float64(v.BlockSize) }},
		{"sluice_bdev_descriptors", "Open descriptors, by mode.", nil},
		{"sluice_bdev_claimed", "1 when a stage has claimed the bdev.", func(v *BdevView) float64 { return b2f(v.Claimer != "") }},
	}
	for _, f := range families {
		w.Family(f.name, f.help, true)
		for i := range views {
			v := &views[i]
			if f.get == nil {
				w.Sample(float64(v.Writers), "bdev", v.Name, "mode", "write")
				w.Sample(float64(v.Readers), "bdev", v.Name, "mode", "read")
				continue
			}
			w.Sample(f.get(v), "bdev", v.Name, "driver", v.Driver, "block_size", strconv.Itoa(int(v.BlockSize)))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
