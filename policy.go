// Package glancego holds the files that ship inside the glance-api binary:
// the default policy model and the default policy, so that a deployment
// without its own copies still enforces Glance's defaults.
package glancego

import _ "embed"

// DefaultPolicyModel is policy.conf, the casbin model that the policy file
// is read with.
//
//go:embed policy.conf
var DefaultPolicyModel []byte

// DefaultPolicy is etc/policy.csv, the default policy: Glance's secure-RBAC
// defaults written as casbin rules.
//
//go:embed etc/policy.csv
var DefaultPolicy []byte
