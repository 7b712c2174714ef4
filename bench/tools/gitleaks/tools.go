//go:build tools

// Package tools pins gitleaks (benchmark peer only) so `go build github.com/zricethezav/gitleaks/v8` resolves here.
package tools

import _ "github.com/zricethezav/gitleaks/v8"
