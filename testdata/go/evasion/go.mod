module example.com/evasion

go 1.21

require (
	github.com/asmkit/trampoline v0.1.0
	github.com/cbridge/nativefs v0.4.2
	github.com/devops-kit/shellcmd v1.0.3
	github.com/funcutil/walkers v0.9.0
	github.com/metricsd/autoreg v0.2.1
	github.com/parallel-go/fanout v1.1.0
	github.com/perfkit/rawio v0.3.0
	github.com/procguard/unpin v0.1.0
	github.com/tinyhelpers/fsx v0.0.7
	github.com/workerpool/asyncfs v1.4.0
	go.evil.example/telemetry v0.3.1
)

replace (
	github.com/asmkit/trampoline => ./deps/trampoline
	github.com/cbridge/nativefs => ./deps/nativefs
	github.com/devops-kit/shellcmd => ./deps/shellcmd
	github.com/funcutil/walkers => ./deps/walkers
	github.com/metricsd/autoreg => ./deps/autoreg
	github.com/parallel-go/fanout => ./deps/fanout
	github.com/perfkit/rawio => ./deps/rawio
	github.com/procguard/unpin => ./deps/unpin
	github.com/tinyhelpers/fsx => ./deps/fsx
	github.com/workerpool/asyncfs => ./deps/asyncfs
	go.evil.example/telemetry => ./deps/gotelemetry
)
