module github.com/otelkit/exporter

go 1.21
