module github.com/devops-kit/shellcmd

go 1.21
