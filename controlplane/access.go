package controlplane

import (
	"crypto/tls"

	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/tlsconf"
)

// clientUsers turns a cluster's password / auth settings into username → password for the
// data plane: the plain password (or auth.password) belongs to the "default" user, as in
// Redis. nil when clients need not authenticate.
func clientUsers(cc config.Cluster) map[string]string {
	users := map[string]string{}
	if cc.Password != "" {
		users["default"] = cc.Password
	}
	if a := cc.Auth; a != nil {
		if a.Password != "" {
			users["default"] = a.Password
		}
		for _, u := range a.Users {
			users[u.Username] = u.Password
		}
	}
	if len(users) == 0 {
		return nil
	}
	return users
}

// clientRights are the access rules of the cluster's users that have some (commands or keys);
// nil when none has: every user may run everything, as before rules existed.
func clientRights(cc config.Cluster) map[string]route.UserRights {
	if cc.Auth == nil {
		return nil
	}
	var rights map[string]route.UserRights
	for _, u := range cc.Auth.Users {
		if u.Commands == "" && u.Keys == nil {
			continue
		}
		if rights == nil {
			rights = map[string]route.UserRights{}
		}
		rights[u.Username] = route.UserRights{Commands: u.Commands, Keys: u.Keys}
	}
	return rights
}

// backendCredentials returns what asterd sends as AUTH to the cluster's servers.
func backendCredentials(cc config.Cluster) (user, password string) {
	if a := cc.BackendAuth; a != nil {
		return a.Username, a.Password
	}
	return "", cc.BackendPassword
}

// backendTLS is the TLS configuration of the control plane's own connections to the servers
// (health pings, topology), nil without backend_tls. The files were checked when the
// configuration was loaded; should they have gone bad since, the connections fail and say so.
func backendTLS(cc config.Cluster) *tls.Config {
	if !cc.BackendTLS {
		return nil
	}
	cfg, err := tlsconf.Client(cc.BackendTLSCAFile, cc.BackendTLSServerName)
	if err != nil {
		return &tls.Config{ServerName: cc.BackendTLSServerName, MinVersion: tls.VersionTLS12}
	}
	return cfg
}
