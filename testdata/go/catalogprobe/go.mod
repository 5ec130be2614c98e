module example.com/catalogprobe

go 1.19
