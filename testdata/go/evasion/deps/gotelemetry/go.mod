module go.evil.example/telemetry

go 1.21
