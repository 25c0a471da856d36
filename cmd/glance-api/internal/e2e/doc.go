// Package e2e is the end-to-end test suite of glance-api: it speaks HTTP to
// a running server and checks status codes, headers and bodies as Glance's
// Image API v2 defines them. The suite is the compatibility contract of the
// project, and every test in it also passes against the real Glance 25.1.
//
// By default TestMain builds ./cmd/glance-api, writes a temporary
// glance-api.conf, runs "glance-api db sync" and starts the binary on a free
// loopback port in the trusted-auth flavor (identity taken from X-* headers).
// A build failure fails the whole suite. The environment changes that:
//
//	GLANCE_E2E_ENDPOINT          use this running server instead of building one
//	GLANCE_E2E_FLAVOR            its flavor: trusted (the default) or noauth
//	GLANCE_E2E_NOAUTH_ENDPOINT   a noauth server for TestOpenStackCLI, when
//	                             GLANCE_E2E_ENDPOINT is a trusted one
//	GLANCE_E2E_LEGACY=1          the endpoint is the real Glance 25.1 (Zed):
//	                             expect Zed's legacy policy defaults where they
//	                             differ from the newest Glance's
//	GLANCE_E2E_MYSQL_DSN         run our binary on MySQL, e.g.
//	                             mysql+pymysql://root@127.0.0.1/glance_e2e
//	                             (the database is created when missing)
//	GLANCE_E2E_KEEP=1            keep the temporary directory (configs, logs)
//
// Against the real Glance, trusted flavor on one port and the stock noauth
// pipeline on another (scripts/reference-glance.sh runs either):
//
//	scripts/reference-glance.sh start 19292 trusted
//	scripts/reference-glance.sh start 19293 noauth
//	GLANCE_E2E_ENDPOINT=http://127.0.0.1:19292 GLANCE_E2E_LEGACY=1 \
//	GLANCE_E2E_NOAUTH_ENDPOINT=http://127.0.0.1:19293 \
//	go test ./cmd/glance-api/internal/e2e/
//
// Tests that need project-scoped callers skip in the noauth flavor. The slow
// TestOpenStackCLI, which drives the real openstack and glance command-line
// clients (scripts/install-clients.sh installs them), skips under -short.
// TestGlanceManageDatabase runs only against our own binary.
//
// With -tags ceph,pacific the TestRBD* tests are compiled too (make
// test-ceph runs them): they build a second glance-api with the rbd store
// and run it on the cluster of scripts/ceph-dev.sh that GLANCE_TEST_RBD_CONF,
// _USER and _POOL name; TestRBDGlanceInterop starts Debian's Glance with
// its rbd store on port 19494 (scripts/reference-glance.sh), and
// GLANCE_TEST_RBD_FAULTS=1 adds an OSD stopped mid-upload on a second
// cluster of the test's own.
//
// Every test makes its own images, with names, tags and projects unique to
// the run, and deletes them when it ends, so the suite can run repeatedly
// against one long-lived server.
package e2e
