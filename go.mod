module kvmgate

go 1.26
