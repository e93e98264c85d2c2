package tcp

import (
	"errors"
	"fmt"

	"github.com/sluice-storage/sluice/protocols/nvmf"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
)

// Placement picks the reactor of each accepted connection (SPDK's poll group choice).
type Placement uint8

const (
	// PlacementRoundRobin: connections go to the reactors in turn, so one host's queues
	// spread over the cores.
	PlacementRoundRobin Placement = iota
	// PlacementLeastConnections: the reactor with the fewest connections now.
	PlacementLeastConnections
)

func (p Placement) String() string {
	switch p {
	case PlacementRoundRobin:
		return "round-robin"
	case PlacementLeastConnections:
		return "least-connections"
	}
	return fmt.Sprintf("Placement(%d)", uint8(p))
}

// Options configure the TCP transport (SPDK's nvmf_create_transport for trtype TCP).
type Options struct {
	nvmf.TransportOptions
	// MaxH2CData is MAXH2CDATA in ICResp: the most data one H2CData PDU carries. 0 takes
	// MaxH2CDataDefault; a multiple of 4 of at least 4096 (NVMe/TCP 1.0, "ICResp").
	MaxH2CData uint32
	// NoHeaderDigest and NoDataDigest refuse a host's request for that digest (ICResp
	// leaves it off; Linux then fails the connection, so the operator sees it).
	NoHeaderDigest bool
	NoDataDigest   bool
	// NoC2HSuccess turns off the C2HData SUCCESS optimization (SPDK's c2h_success false):
	// every read then gets a response capsule, even with SQ flow control off.
	NoC2HSuccess bool
	// Placement picks each connection's reactor.
	Placement Placement
}

// MaxH2CDataDefault is one large bdev buffer: a 128 KiB write moves in one H2CData PDU, as
// with SPDK (NVMF_TCP_PDU_MAX_H2C_DATA_SIZE).
const MaxH2CDataDefault = 128 << 10

// fill sets defaults and validates, reporting every problem at once.
func (o *Options) fill() error {
	o.TransportOptions.Fill()
	if o.MaxH2CData == 0 {
		o.MaxH2CData = MaxH2CDataDefault
	}
	errs := []error{o.TransportOptions.Validate()}
	if n := o.MaxH2CData; n < pdu.MAXH2CDataMin || n%4 != 0 || n > nvmf.MaxIOSizeLimit {
		errs = append(errs, fmt.Errorf("tcp option max_h2c_data: %d, want a multiple of 4 in %d..%d: %w",
			n, pdu.MAXH2CDataMin, nvmf.MaxIOSizeLimit, nvmf.ErrConfig))
	}
	if o.Placement > PlacementLeastConnections {
		errs = append(errs, fmt.Errorf("tcp option placement: %v, want round-robin or least-connections: %w",
			o.Placement, nvmf.ErrConfig))
	}
	return errors.Join(errs...)
}
