package server

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"kvmgate/encoders/video"
	"kvmgate/input"
)

// WebRTCOptions configures the WebRTC transport: where ICE listens and
// what it announces. The zero value gathers host candidates (loopback
// included) on any UDP port.
type WebRTCOptions struct {
	// Disabled refuses WebRTC; viewers asking for it get WebSocket video.
	Disabled bool
	// PublicIPs replace the host candidates' addresses (a 1:1 NAT: the
	// server's public addresses).
	PublicIPs []string
	// PortMin and PortMax bound the UDP ports ICE uses; 0 means any.
	PortMin, PortMax uint16
	// Interfaces, if set, restricts ICE to these network interfaces (e.g.
	// "lo" keeps every candidate on loopback, as the tests do).
	Interfaces []string
	// ICEServers are STUN and TURN servers for both ends; they are sent
	// to the browser with the offer.
	ICEServers []ICEServer
}

// ICEServer is a STUN or TURN server, as RTCPeerConnection takes it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// rtcEventQueue is how many signalling and RTCP events may wait for the
// sender.
const rtcEventQueue = 64

// Kinds of rtcEvent.
const (
	rtcLocalCandidate  = iota // a candidate to send to the browser
	rtcRemoteAnswer           // the browser's answer
	rtcRemoteCandidate        // a candidate from the browser
	rtcKeyframe               // the browser asked for a keyframe (PLI/FIR)
	rtcFailed                 // ICE or DTLS failed
)

// rtcEvent is signalling or RTCP news for the sender goroutine, which owns
// the peer connection's state: browser messages (from the reader) and
// pion's callbacks (from its goroutines) all come through vc.rtcEvents.
type rtcEvent struct {
	kind      int
	peer      *rtcPeer // nil for browser messages: the current peer
	sdp       string
	candidate *webrtc.ICECandidateInit
}

// Signalling messages the server sends (docs/protocol.md, "WebRTC").
type (
	rtcOfferMsg struct {
		T          string      `json:"t"`
		SDP        string      `json:"sdp"`
		ICEServers []ICEServer `json:"iceServers"`
	}
	rtcCandidateMsg struct {
		T         string                   `json:"t"`
		Candidate *webrtc.ICECandidateInit `json:"candidate"`
	}
)

// rtcPeer is a WebRTC viewer's peer connection: a video track fed by the
// viewer's video encoder, the "input" DataChannel, and the GCC bandwidth
// estimate that sets the encoder's bitrate.
type rtcPeer struct {
	pc        *webrtc.PeerConnection
	track     *webrtc.TrackLocalStaticSample
	bwe       cc.BandwidthEstimator
	last      time.Time // when the last sample was written
	connected atomic.Bool
	bytes     atomic.Uint64
}

// rtcCodec returns the RTP codec kvmgate sends for a video codec.
func rtcCodec(codec string) (webrtc.RTPCodecParameters, error) {
	fb := []webrtc.RTCPFeedback{
		{Type: webrtc.TypeRTCPFBTransportCC},
		{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
		{Type: webrtc.TypeRTCPFBNACK},
		{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
	}
	switch codec {
	case video.VP8:
		return webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb,
		}}, nil
	case video.H264:
		return webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: fb,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		}}, nil
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("webrtc: %w: %q", video.ErrUnknownCodec, codec)
}

// startRTC creates the peer connection of a WebRTC viewer sending codec.
// Its offer goes out with sendOffer once the browser knows the transport.
func (vc *viewerConn) startRTC(codec string) (*rtcPeer, error) {
	opts := vc.s.opts.WebRTC
	params, err := rtcCodec(codec)
	if err != nil {
		return nil, err
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(params, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("webrtc: register %s: %w", codec, err)
	}
	reg := &interceptor.Registry{}
	ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(
			gcc.SendSideBWEInitialBitrate(videoStartBitrate),
			gcc.SendSideBWEMinBitrate(video.MinBitrate),
			gcc.SendSideBWEMaxBitrate(video.MaxBitrate),
			gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
		)
	})
	if err != nil {
		return nil, fmt.Errorf("webrtc: congestion controller: %w", err)
	}
	p := &rtcPeer{}
	ccf.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) { p.bwe = e })
	reg.Add(ccf)
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, reg); err != nil {
		return nil, fmt.Errorf("webrtc: twcc: %w", err)
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: playoutDelayURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("webrtc: playout delay: %w", err)
	}
	reg.Add(playoutDelayFactory{})
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, fmt.Errorf("webrtc: interceptors: %w", err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if len(opts.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: opts.PublicIPs, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("webrtc: public IPs: %w", err)
		}
	}
	if len(opts.Interfaces) > 0 {
		allowed := slices.Clone(opts.Interfaces)
		se.SetInterfaceFilter(func(name string) bool { return slices.Contains(allowed, name) })
	}
	if opts.PortMin != 0 || opts.PortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(opts.PortMin, opts.PortMax); err != nil {
			return nil, fmt.Errorf("webrtc: UDP port range: %w", err)
		}
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: pionICEServers(opts.ICEServers)})
	if err != nil {
		return nil, fmt.Errorf("webrtc: peer connection: %w", err)
	}
	p.pc = pc
	fail := func(err error) (*rtcPeer, error) {
		_ = pc.Close()
		return nil, err
	}
	if p.bwe == nil {
		return fail(errors.New("webrtc: no bandwidth estimator"))
	}
	p.track, err = webrtc.NewTrackLocalStaticSample(params.RTPCodecCapability, "video", "kvmgate")
	if err != nil {
		return fail(fmt.Errorf("webrtc: track: %w", err))
	}
	sender, err := pc.AddTrack(p.track)
	if err != nil {
		return fail(fmt.Errorf("webrtc: add track: %w", err))
	}
	go vc.readRTCP(p, sender)
	dc, err := pc.CreateDataChannel("input", nil)
	if err != nil {
		return fail(fmt.Errorf("webrtc: data channel: %w", err))
	}
	vc.serveDataChannel(dc)
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		vc.rtcEvent(rtcEvent{kind: rtcLocalCandidate, peer: p, candidate: &init})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		vc.log.Info("webrtc connection", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateConnected:
			p.connected.Store(true)
		case webrtc.PeerConnectionStateFailed:
			vc.rtcEvent(rtcEvent{kind: rtcFailed, peer: p})
		}
	})
	return p, nil
}

// pionICEServers converts the configured STUN/TURN servers.
func pionICEServers(list []ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(list))
	for _, s := range list {
		is := webrtc.ICEServer{URLs: s.URLs, Username: s.Username}
		if s.Credential != "" {
			is.Credential = s.Credential
		}
		out = append(out, is)
	}
	return out
}

// rtcEvent queues ev for the sender; events beyond the queue are dropped
// (a lost candidate at worst makes ICE fail, and the browser falls back).
func (vc *viewerConn) rtcEvent(ev rtcEvent) {
	select {
	case vc.rtcEvents <- ev:
	default:
		vc.log.Warn("webrtc event dropped", "kind", ev.kind)
	}
}

// readRTCP reads the video sender's RTCP (which also drives the NACK and
// congestion control interceptors) and turns PLI and FIR into keyframes.
func (vc *viewerConn) readRTCP(p *rtcPeer, sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				vc.rtcEvent(rtcEvent{kind: rtcKeyframe, peer: p})
			}
		}
	}
}

// serveDataChannel applies the browser messages arriving on the "input"
// DataChannel exactly as those on the WebSocket.
func (vc *viewerConn) serveDataChannel(dc *webrtc.DataChannel) {
	var buttons input.Buttons
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		if !msg.IsString {
			vc.fail(closePolicy, "binary messages are not accepted from the browser")
			return
		}
		if len(msg.Data) > MaxClientMessage {
			vc.fail(closeTooBig, "message larger than 1 MiB")
			return
		}
		if err := vc.handle(msg.Data, &buttons); err != nil {
			vc.fail(closePolicy, err.Error())
		}
	})
}

// sendOffer creates the offer for the viewer's peer and sends it.
func (vc *viewerConn) sendOffer(p *rtcPeer) error {
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("webrtc: create offer: %w", err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("webrtc: set local description: %w", err)
	}
	servers := vc.s.opts.WebRTC.ICEServers
	if servers == nil {
		servers = []ICEServer{}
	}
	return vc.writeJSON(rtcOfferMsg{T: "rtc-offer", SDP: offer.SDP, ICEServers: servers})
}

// handleRTCEvent applies one signalling or RTCP event on the sender
// goroutine. Events of a peer that is gone are ignored.
func (vc *viewerConn) handleRTCEvent(ev rtcEvent) error {
	vs := vc.video
	if vs == nil || vs.rtc == nil || (ev.peer != nil && ev.peer != vs.rtc) {
		return nil
	}
	p := vs.rtc
	switch ev.kind {
	case rtcLocalCandidate:
		return vc.writeJSON(rtcCandidateMsg{T: "rtc-candidate", Candidate: ev.candidate})
	case rtcRemoteAnswer:
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ev.sdp}); err != nil {
			vc.log.Info("webrtc answer refused", "err", err)
			return vc.rtcFallback("the browser's answer was refused: " + err.Error())
		}
	case rtcRemoteCandidate:
		if ev.candidate == nil || ev.candidate.Candidate == "" {
			return nil // end of candidates
		}
		if err := p.pc.AddICECandidate(*ev.candidate); err != nil {
			vc.log.Debug("webrtc candidate ignored", "err", err)
		}
	case rtcKeyframe:
		return vc.sendRTCKeyframe()
	case rtcFailed:
		return vc.rtcFallback("WebRTC connection failed")
	}
	return nil
}

// rtcFallback leaves WebRTC for WebSocket video, telling the browser why.
func (vc *viewerConn) rtcFallback(why string) error {
	if err := vc.writeJSON(errorMsg{T: "error", Message: why + "; using WebSocket video"}); err != nil {
		return err
	}
	return vc.setTransport(transportRequest{Transport: TransportWSVideo, Codec: vc.video.codec})
}

// sendRTCKeyframe encodes the picture last taken as a keyframe and sends
// it, for a browser that lost the stream's state.
func (vc *viewerConn) sendRTCKeyframe() error {
	vs := vc.video
	if vs.enc == nil {
		return nil // the first frame is a keyframe anyway
	}
	now := time.Now()
	f, err := vs.enc.Encode(vs.frame[:0], &vc.mirror, vs.pts(now), true)
	if err != nil {
		return fmt.Errorf("webrtc: keyframe: %w", err)
	}
	vs.frame = f.Data
	return vc.writeSample(f, now)
}

// writeSample sends one encoded picture on the video track.
func (vc *viewerConn) writeSample(f video.Frame, now time.Time) error {
	p := vc.video.rtc
	if len(f.Data) == 0 {
		return nil
	}
	d := videoMinInterval
	if !p.last.IsZero() {
		d = now.Sub(p.last)
	}
	p.last = now
	if err := p.track.WriteSample(media.Sample{Data: f.Data, Duration: d}); err != nil {
		return fmt.Errorf("webrtc: write sample: %w", err)
	}
	p.bytes.Add(uint64(len(f.Data)))
	vc.winBytes += len(f.Data)
	vc.s.metrics.bytesSent.Add(uint64(len(f.Data)))
	return nil
}

// close ends the peer connection.
func (p *rtcPeer) close() {
	_ = p.pc.Close()
}
