// Package migrations holds the access-control domain's schema changes (principals, the audit
// chain, people, doors, credentials, rules, face templates, groups). storage/schema applies them
// in one order with every other domain's.
package migrations

import "embed"

// FS holds the *.sql files, each named VERSION_name.sql.
//
//go:embed *.sql
var FS embed.FS
