//go:build !linux

package netpoll

import (
	"errors"

	"github.com/aster-proxy/aster/dataplane/rawio"
)

// poller needs epoll; elsewhere every client gets a goroutine of its own.
type poller struct{}

type event struct {
	id  uint64
	hup bool
}

func newPoller() (*poller, error) { return nil, errors.ErrUnsupported }

func (p *poller) add(*rawio.Conn, uint64) error { return errors.ErrUnsupported }
func (p *poller) del(*rawio.Conn)               {}
func (p *poller) wait() ([]event, error)        { return nil, errors.ErrUnsupported }
func (p *poller) full() bool                    { return false }
func (p *poller) wake()                         {}
func (p *poller) close()                        {}
func (p *poller) free()                         {}
