module github.com/streamkit/stream

go 1.26

require (
	github.com/stretchr/testify v1.11.1 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)
