module example.com/capapp

go 1.19

require (
	github.com/acme/fileutil v1.2.3
	github.com/acme/go.strutil v0.2.0
	github.com/acme/mono v0.5.0
	github.com/acme/mono/sub v0.5.0
	github.com/acme/netclient v1.8.0
	github.com/acme/rawsys v0.1.0
	github.com/acme/runner v0.3.0
	github.com/evil/telemetry v0.0.9
	gopkg.in/acme.v2 v2.1.0
)

replace (
	github.com/acme/fileutil => ./deps/fileutil
	github.com/acme/go.strutil => ./deps/go.strutil
	github.com/acme/mono => ./deps/mono
	github.com/acme/mono/sub => ./deps/mono/sub
	github.com/acme/rawsys => ./deps/rawsys
	github.com/acme/runner v0.3.0 => github.com/acme/runner-fork v0.3.1
	github.com/evil/telemetry => ./deps/telemetry
	gopkg.in/acme.v2 => ./deps/acme.v2
)
