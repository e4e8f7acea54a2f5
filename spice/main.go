package spice

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
)

// Main channel messages.
const (
	msgMainMigrateBegin         = 101
	msgMainMigrateCancel        = 102
	msgMainInit                 = 103
	msgMainChannelsList         = 104
	msgMainMouseMode            = 105
	msgMainMultiMediaTime       = 106
	msgMainAgentConnected       = 107
	msgMainAgentDisconnected    = 108
	msgMainAgentData            = 109
	msgMainAgentToken           = 110
	msgMainMigrateSwitchHost    = 111
	msgMainMigrateEnd           = 112
	msgMainName                 = 113
	msgMainUUID                 = 114
	msgMainAgentConnectedTokens = 115
	msgMainMigrateBeginSeamless = 116

	msgcMainAttachChannels   = 104
	msgcMainMouseModeRequest = 105

	mainCapSemiSeamlessMigrate = 0
	mainCapNameAndUUID         = 1
)

// Mouse modes (SPICE_MOUSE_MODE_*).
const (
	MouseModeServer = 1
	MouseModeClient = 2
)

// mainInit is the content of SPICE_MSG_MAIN_INIT.
type mainInit struct {
	SessionID           uint32
	DisplayChannelsHint uint32
	SupportedMouseModes uint32
	CurrentMouseMode    uint32
	AgentConnected      uint32
	AgentTokens         uint32
	MultiMediaTime      uint32
	RAMHint             uint32
}

func parseMainInit(b []byte) (mainInit, error) {
	r := newReader(b)
	m := mainInit{r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.u32()}
	if r.err != nil {
		return m, fmt.Errorf("spice: main INIT: %w", r.err)
	}
	return m, nil
}

// channelID names one channel of a session.
type channelID struct{ typ, id uint8 }

func parseChannelsList(b []byte) ([]channelID, error) {
	r := newReader(b)
	n := r.u32()
	if uint64(n)*2 > uint64(len(b)) {
		return nil, FormatError(fmt.Sprintf("channel list of %d entries in %d bytes", n, len(b)))
	}
	ids := make([]channelID, 0, n)
	for i := uint32(0); i < n; i++ {
		ids = append(ids, channelID{r.u8(), r.u8()})
	}
	if r.err != nil {
		return nil, fmt.Errorf("spice: main CHANNELS_LIST: %w", r.err)
	}
	return ids, nil
}

// migrationTarget parses MIGRATE_SWITCH_HOST (port, sport, host size, a
// pointer to the host name, certificate subject size and pointer) into the
// host and the plain and TLS ports to reconnect to; ok is false if it names
// no host or no port.
func migrationTarget(b []byte) (host string, port, tlsPort int, ok bool) {
	r := newReader(b)
	p, sp := r.u16(), r.u16()
	hostLen, hostPtr := r.u32(), r.u32()
	h := trimNUL(r.at(hostPtr).bytes(int(min(hostLen, uint32(len(b))))))
	if r.err != nil || h == nil || p == 0 && sp == 0 || len(h) == 0 {
		return "", 0, 0, false
	}
	return string(h), int(p), int(sp), true
}

// handleMain handles one main channel message during a session.
func (s *session) handleMain(m message) error {
	switch m.typ {
	case msgMainChannelsList:
		ids, err := parseChannelsList(m.body)
		if err != nil {
			return err
		}
		s.log.Debug("spice: channels", "list", ids)
		for _, id := range ids {
			switch id.typ {
			case ChannelDisplay:
				if id.id == 0 {
					s.start(id)
				}
			case ChannelInputs, ChannelCursor:
				s.start(id)
			}
		}
	case msgMainMouseMode:
		r := newReader(m.body)
		supported, current := r.u16(), r.u16()
		if r.err != nil {
			return fmt.Errorf("spice: main MOUSE_MODE: %w", r.err)
		}
		s.client.setMouseModes(uint32(supported))
		s.client.setMouseMode(uint32(current))
		s.publishCaps()
		s.log.Debug("spice: mouse mode", "supported", supported, "current", current)
		if supported&MouseModeClient != 0 && current != MouseModeClient {
			return s.requestClientMouse()
		}
	case msgMainMultiMediaTime:
		r := newReader(m.body)
		t := r.u32()
		if r.err != nil {
			return fmt.Errorf("spice: main MULTI_MEDIA_TIME: %w", r.err)
		}
		s.client.mmTime.Store(t)
	case msgMainName:
		r := newReader(m.body)
		n := r.u32()
		name := r.bytes(int(min(n, uint32(len(m.body)))))
		if r.err == nil {
			s.client.setName(string(trimNUL(name)))
			s.fb.SetName(string(trimNUL(name)))
		}
	case msgMainMigrateSwitchHost:
		if host, port, tlsPort, ok := migrationTarget(m.body); ok {
			s.client.setMigrationTarget(host, port, tlsPort)
		}
		return errMigrate
	case msgMainMigrateBegin, msgMainMigrateBeginSeamless:
		// Treated as a reconnect: when the source server goes away, Run
		// links again (to the new host if the server said which).
		s.log.Info("spice: server began a migration; will reconnect when it ends")
	case msgMainMigrateEnd:
		return errMigrate
	case msgMainInit:
		mi, err := parseMainInit(m.body)
		if err != nil {
			return err
		}
		s.client.setMouseModes(mi.SupportedMouseModes)
		s.client.setMouseMode(mi.CurrentMouseMode)
		s.publishCaps()
	case msgMainAgentConnected:
		defer s.publishCaps()
		return s.agent.onConnected(s.client.agentTokens())
	case msgMainAgentConnectedTokens, msgMainAgentToken:
		r := newReader(m.body)
		n := r.u32()
		if r.err != nil {
			return fmt.Errorf("spice: main agent tokens: %w", r.err)
		}
		if m.typ == msgMainAgentToken {
			return s.agent.onTokens(n)
		}
		defer s.publishCaps()
		return s.agent.onConnected(n)
	case msgMainAgentDisconnected:
		s.agent.onDisconnected()
		s.publishCaps()
	case msgMainAgentData:
		return s.agent.onData(m.body)
	case msgMainMigrateCancel, msgMainUUID:
	default:
		s.log.Debug("spice: unhandled main message", "type", m.typ)
	}
	return nil
}

// requestClientMouse asks for client (absolute) mouse mode.
func (s *session) requestClientMouse() error {
	return s.main.send(msgcMainMouseModeRequest, binary.LittleEndian.AppendUint16(nil, MouseModeClient))
}

// readInit reads main channel messages until INIT, answering base
// messages on the way.
func readInit(ctx context.Context, ch *channel) (mainInit, error) {
	for {
		m, _, err := ch.readMessage()
		if err != nil {
			return mainInit{}, fmt.Errorf("spice: main channel: waiting for INIT: %w", err)
		}
		ch.received.Add(1)
		var mi mainInit
		got := false
		err = ch.dispatch(ctx, m, func(m message) error {
			if m.typ != msgMainInit {
				return nil
			}
			got = true
			mi, err = parseMainInit(m.body)
			return err
		})
		if err != nil {
			return mi, err
		}
		if got {
			return mi, nil
		}
	}
}

func logOrDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
