module example.com/demo

go 1.19

require github.com/evil/telemetry v1.4.2

replace github.com/evil/telemetry => ./telemetry
