module github.com/funcutil/walkers

go 1.21
