// Package migrations holds the camera registry's schema changes. storage/schema applies them in
// one order with every other domain's.
package migrations

import "embed"

// FS holds the *.sql files, each named VERSION_name.sql.
//
//go:embed *.sql
var FS embed.FS
