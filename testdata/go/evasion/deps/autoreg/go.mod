module github.com/metricsd/autoreg

go 1.21
