// Package config reads Glance's own glance-api.conf, so that operators can
// point glance-go at the file they already have:
//
//	glance-api --config-file /etc/glance/glance-api.conf
//
// # Which defaults apply
//
// With no --config-file and no --config-dir at all, Load returns Default(),
// the embedded configuration: 127.0.0.1:9292, SQLite at ./data/glance.sqlite
// (connection sqlite:///data/glance.sqlite, relative to the working
// directory), images in ./data/images, staging in ./data/staging, no
// authentication and the built-in policy. glance-go does not search
// ~/.glance/, ~/, /etc/glance/ and /etc/ for a glance-api.conf as Glance
// does when none is named: the binary must run as it is with no
// configuration, so an existing file is always named explicitly.
//
// As soon as one file (or directory) is given, every option the files leave
// unset takes Glance's default, not the embedded one: bind_host 0.0.0.0,
// filesystem_store_datadir /var/lib/glance/images, and no database
// connection, which Validate refuses. A production file without [database]
// connection thus stops the server instead of quietly writing to ./data.
// [image_format] require_image_format_match defaults to true, as in current
// Glance.
//
// # File syntax (oslo.config's)
//
//   - --config-file may be repeated; every *.conf of each --config-dir is read
//     after the files, in name order. A later file overrides an earlier one
//     option by option; within one file the last assignment wins.
//   - "key = value" or "key: value"; lines starting with '#' or ';' are
//     comments ('#' inside a value is kept); one pair of quotes around a
//     value is dropped; indented lines continue a value.
//   - [DEFAULT] is matched exactly; every other section name is compared in
//     lower case ([Database] is [database]), so [default] is a different
//     section that nothing reads. In option names '-' equals '_'.
//   - Lists are "a,b" or "[a, b]"; dicts "k:v,k2:v2"; booleans are
//     true/false, yes/no, on/off, 1/0 in any case. An empty integer or
//     boolean keeps its default.
//   - A value may refer to another option as $name or ${name} (looked up in
//     the same section, then in [DEFAULT]) or $section.name; "$$" and "\$"
//     are a literal '$'. An option set in no file has its default value; a
//     reference to nothing is an error.
//   - Deprecated names Glance still reads are honoured with a warning:
//     [DEFAULT] sql_connection, [database] sql_connection and [sql] connection
//     for [database] connection; [DEFAULT] disk_formats and container_formats.
//
// Options glance-go does not implement are not errors: Load returns them,
// and the server names them all in one warning (FormatIgnored). Options used
// only through a $reference, and the sections of enabled_backends (handed to
// the stores in Config.BackendOptions), are not reported. An invalid value
// of an implemented option is an error naming the file, line, section,
// option and value.
//
// Relative paths in policy_file, casbin_model_file and
// property_protection_file, and schema-image.json, are looked for the way
// oslo.config finds files: in the --config-dir directories, next to the
// --config-file files (last first), then in /etc/glance/. glance-go policies
// are casbin CSV: a policy_file ending in .yaml, .yml or .json is Glance's
// and is skipped with a warning, leaving the built-in default policy.
package config
