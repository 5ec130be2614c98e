module example.com/evasion

go 1.21

require (
	github.com/asmkit/trampoline v0.1.0
	github.com/cbridge/nativefs v0.4.2
	github.com/cfgsrc/envfile v0.1.0
	github.com/devops-kit/shellcmd v1.0.3
	github.com/fastenv/linkenv v0.1.0
	github.com/funcutil/walkers v0.9.0
	github.com/hotcode/jit v0.1.0
	github.com/metricsd/autoreg v0.2.1
	github.com/otelkit/exporter v0.1.0
	github.com/parallel-go/fanout v1.1.0
	github.com/perfkit/rawio v0.3.0
	github.com/procguard/unpin v0.1.0
	github.com/sysutil/rawx v0.1.0
	github.com/tinyhelpers/fsx v0.0.7
	github.com/workerpool/asyncfs v1.4.0
	go.evil.example/telemetry v0.3.1
)

replace (
	github.com/asmkit/trampoline => ./deps/trampoline
	github.com/cbridge/nativefs => ./deps/nativefs
	github.com/cfgsrc/envfile => ./deps/procenv
	github.com/devops-kit/shellcmd => ./deps/shellcmd
	github.com/fastenv/linkenv => ./deps/linkenv
	github.com/funcutil/walkers => ./deps/walkers
	github.com/hotcode/jit => ./deps/jitpatch
	github.com/metricsd/autoreg => ./deps/autoreg
	github.com/otelkit/exporter => ./deps/egress
	github.com/parallel-go/fanout => ./deps/fanout
	github.com/perfkit/rawio => ./deps/rawio
	github.com/procguard/unpin => ./deps/unpin
	github.com/sysutil/rawx => ./deps/rawx
	github.com/tinyhelpers/fsx => ./deps/fsx
	github.com/workerpool/asyncfs => ./deps/asyncfs
	go.evil.example/telemetry => ./deps/gotelemetry
)
