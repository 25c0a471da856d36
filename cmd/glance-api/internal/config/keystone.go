package config

// KeystoneAuthtokenConfig is the [keystone_authtoken] section, read by the
// keystone flavor of [paste_deploy] as keystonemiddleware's auth_token reads
// it. Options of auth_token that glance-go does not implement (the
// memcached_servers family, certfile, keyfile, include_service_catalog,
// enforce_token_bind, ...) are reported as ignored at start.
type KeystoneAuthtokenConfig struct {
	// WWWAuthenticateURI is www_authenticate_uri (deprecated name auth_uri),
	// the public identity endpoint named in the WWW-Authenticate header of
	// a 401. When unset, auth_url is named instead.
	WWWAuthenticateURI string
	AuthURL            string // auth_url
	AuthType           string // auth_type; only password is supported
	Username           string // username
	Password           string // password
	ProjectName        string // project_name
	ProjectID          string // project_id
	UserDomainName     string // user_domain_name
	UserDomainID       string // user_domain_id
	ProjectDomainName  string // project_domain_name
	ProjectDomainID    string // project_domain_id
	RegionName         string // region_name
	Interface          string // interface: public, internal (default) or admin
	// TokenCacheTime is token_cache_time, seconds (300); -1 disables the
	// token cache.
	TokenCacheTime            int
	ServiceTokenRoles         []string // service_token_roles (service)
	ServiceTokenRolesRequired bool     // service_token_roles_required
	HTTPConnectTimeout        int      // http_connect_timeout, seconds; 0: 30 seconds
	HTTPRequestMaxRetries     int      // http_request_max_retries (3)
	Insecure                  bool     // insecure
	CAFile                    string   // cafile
	DelayAuthDecision         bool     // delay_auth_decision
}

func defaultKeystoneAuthtoken() KeystoneAuthtokenConfig {
	return KeystoneAuthtokenConfig{
		Interface:             "internal",
		TokenCacheTime:        300,
		ServiceTokenRoles:     []string{"service"},
		HTTPRequestMaxRetries: 3,
	}
}

// keystoneOptions are the [keystone_authtoken] options Load reads.
var keystoneOptions = []option{
	{"keystone_authtoken", "www_authenticate_uri", [][2]string{{"keystone_authtoken", "auth_uri"}},
		func(c *Config) any { return &c.Keystone.WWWAuthenticateURI }},
	{"keystone_authtoken", "auth_url", nil, func(c *Config) any { return &c.Keystone.AuthURL }},
	{"keystone_authtoken", "auth_type", [][2]string{{"keystone_authtoken", "auth_plugin"}},
		func(c *Config) any { return &c.Keystone.AuthType }},
	{"keystone_authtoken", "username", nil, func(c *Config) any { return &c.Keystone.Username }},
	{"keystone_authtoken", "password", nil, func(c *Config) any { return &c.Keystone.Password }},
	{"keystone_authtoken", "project_name", nil, func(c *Config) any { return &c.Keystone.ProjectName }},
	{"keystone_authtoken", "project_id", nil, func(c *Config) any { return &c.Keystone.ProjectID }},
	{"keystone_authtoken", "user_domain_name", nil, func(c *Config) any { return &c.Keystone.UserDomainName }},
	{"keystone_authtoken", "user_domain_id", nil, func(c *Config) any { return &c.Keystone.UserDomainID }},
	{"keystone_authtoken", "project_domain_name", nil, func(c *Config) any { return &c.Keystone.ProjectDomainName }},
	{"keystone_authtoken", "project_domain_id", nil, func(c *Config) any { return &c.Keystone.ProjectDomainID }},
	{"keystone_authtoken", "region_name", nil, func(c *Config) any { return &c.Keystone.RegionName }},
	{"keystone_authtoken", "interface", nil, func(c *Config) any { return &c.Keystone.Interface }},
	{"keystone_authtoken", "token_cache_time", nil, func(c *Config) any { return &c.Keystone.TokenCacheTime }},
	{"keystone_authtoken", "service_token_roles", nil, func(c *Config) any { return &c.Keystone.ServiceTokenRoles }},
	{"keystone_authtoken", "service_token_roles_required", nil,
		func(c *Config) any { return &c.Keystone.ServiceTokenRolesRequired }},
	{"keystone_authtoken", "http_connect_timeout", nil, func(c *Config) any { return &c.Keystone.HTTPConnectTimeout }},
	{"keystone_authtoken", "http_request_max_retries", nil, func(c *Config) any { return &c.Keystone.HTTPRequestMaxRetries }},
	{"keystone_authtoken", "insecure", nil, func(c *Config) any { return &c.Keystone.Insecure }},
	{"keystone_authtoken", "cafile", nil, func(c *Config) any { return &c.Keystone.CAFile }},
	{"keystone_authtoken", "delay_auth_decision", nil, func(c *Config) any { return &c.Keystone.DelayAuthDecision }},
}

// checkKeystone checks what the keystone flavor needs of [keystone_authtoken].
func (c *Config) checkKeystone() error {
	if c.PasteDeploy.Auth() != "keystone" {
		return nil
	}
	k := c.Keystone
	switch {
	case k.AuthType == "":
		return c.fieldError("keystone_authtoken", "auth_type", "", "is not set: the keystone flavor needs auth_type = password")
	case k.AuthType != "password":
		return c.fieldError("keystone_authtoken", "auth_type", k.AuthType,
			"not supported: glance-go logs its service user in with auth_type = password only")
	}
	for _, o := range []struct{ name, value string }{
		{"auth_url", k.AuthURL}, {"username", k.Username}, {"password", k.Password},
	} {
		if o.value == "" {
			return c.fieldError("keystone_authtoken", o.name, "", "is not set: the keystone flavor needs it to validate tokens")
		}
	}
	if k.ProjectName == "" && k.ProjectID == "" {
		return c.fieldError("keystone_authtoken", "project_name", "", "is not set: the keystone flavor needs a project-scoped service user")
	}
	if bad := checkEndpoint(k.AuthURL); bad != "" {
		return c.fieldError("keystone_authtoken", "auth_url", k.AuthURL, "%s", bad)
	}
	if bad := oneOf(k.Interface, "public", "internal", "admin"); bad != "" {
		return c.fieldError("keystone_authtoken", "interface", k.Interface, "%s", bad)
	}
	if k.HTTPConnectTimeout < 0 {
		return c.fieldError("keystone_authtoken", "http_connect_timeout", k.HTTPConnectTimeout, "must be at least 0")
	}
	if k.HTTPRequestMaxRetries < 0 {
		return c.fieldError("keystone_authtoken", "http_request_max_retries", k.HTTPRequestMaxRetries, "must be at least 0")
	}
	return nil
}
