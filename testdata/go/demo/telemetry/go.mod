module github.com/evil/telemetry

go 1.19
