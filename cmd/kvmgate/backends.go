package main

// The console protocols this binary can open. Each package registers its URL
// scheme with package backend in its init function; every subcommand (serve,
// demo, snapshot) reaches them through backend.Open.
import (
	_ "kvmgate/ipmi/supermicro" // ipmi://USER@HOST?vendor=supermicro
	_ "kvmgate/rfb"             // vnc://HOST:PORT
	_ "kvmgate/spice"           // spice://HOST:PORT
)
