package tokengate

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// errNoSiteIssuer says the issuer cannot be derived from the site.
var errNoSiteIssuer = errors.New("cannot derive the issuer from the site address")

// siteIssuer derives the default issuer (`iss`) from the site this handler
// is provisioned in: https or http as the server serves TLS or not, the one
// host name of the site's host matcher, and the server's port when it is
// not the scheme's default. `api.example.com` gives https://api.example.com,
// `http://localhost:8080` gives http://localhost:8080. The request's Host
// header never plays a part: it is the caller's to choose.
//
// Caddy provisions a server's routes one after the other, loading each
// route's handlers from its raw JSON and only then dropping that JSON, and
// it provisions the handlers with the server in the context. So the route
// being provisioned is, in the server's route list and in the route list of
// every subroute among this module's ancestors, the first one whose handler
// JSON is still there. Any host matcher on those routes is the site's.
//
// A site with no host (`:8080`), several hosts, a wildcard or a placeholder
// for host, or listeners on several ports has no one issuer to derive:
// siteIssuer then refuses, and the configuration must name the issuer.
func siteIssuer(ctx caddy.Context) (string, error) {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil {
		return "", fmt.Errorf("%w: not provisioned inside an HTTP server; set issuer", errNoSiteIssuer)
	}
	current := provisioningRoute(srv.Routes)
	if current == nil && srv.Errors != nil {
		current = provisioningRoute(srv.Errors.Routes)
	}
	if current == nil {
		return "", fmt.Errorf("%w: cannot tell which route this handler is in; set issuer", errNoSiteIssuer)
	}
	lineage := []*caddyhttp.Route{current}
	for _, m := range ctx.Modules() {
		if sr, ok := m.(*caddyhttp.Subroute); ok {
			if r := provisioningRoute(sr.Routes); r != nil {
				lineage = append(lineage, r)
			}
		}
	}
	var hosts []string
	for _, r := range lineage {
		for _, set := range r.MatcherSets {
			for _, m := range set {
				var mh caddyhttp.MatchHost
				switch v := m.(type) {
				case caddyhttp.MatchHost:
					mh = v
				case *caddyhttp.MatchHost:
					mh = *v
				default:
					continue
				}
				for _, h := range mh {
					if h = strings.ToLower(h); !slices.Contains(hosts, h) {
						hosts = append(hosts, h)
					}
				}
			}
		}
	}
	switch {
	case len(hosts) == 0:
		return "", fmt.Errorf("%w: the site has no host name (a catch-all address such as :8080); set issuer to the URL clients use", errNoSiteIssuer)
	case len(hosts) > 1:
		return "", fmt.Errorf("%w: the site has several host names (%s); set issuer to the one tokens belong to", errNoSiteIssuer, strings.Join(hosts, ", "))
	case strings.ContainsAny(hosts[0], "*{}"):
		return "", fmt.Errorf("%w: the site's host %q is a pattern; set issuer", errNoSiteIssuer, hosts[0])
	}
	port := ""
	for _, l := range srv.Listen {
		na, err := caddy.ParseNetworkAddress(l)
		if err != nil || na.IsUnixNetwork() || na.IsFdNetwork() || na.PortRangeSize() != 1 {
			return "", fmt.Errorf("%w: the server listens on %q; set issuer", errNoSiteIssuer, l)
		}
		p := strconv.FormatUint(uint64(na.StartPort), 10)
		if port != "" && p != port {
			return "", fmt.Errorf("%w: the server listens on several ports; set issuer", errNoSiteIssuer)
		}
		port = p
	}
	scheme := "http"
	if len(srv.TLSConnPolicies) > 0 {
		scheme = "https"
	}
	host := hosts[0]
	if strings.Contains(host, ":") { // an IPv6 literal
		host = "[" + strings.Trim(host, "[]") + "]"
	}
	if port != "" && !(scheme == "http" && port == "80") && !(scheme == "https" && port == "443") {
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	return scheme + "://" + host, nil
}

// provisioningRoute returns the route whose handlers Caddy is loading: the
// first that still holds its handlers' JSON.
func provisioningRoute(routes caddyhttp.RouteList) *caddyhttp.Route {
	for i := range routes {
		if routes[i].HandlersRaw != nil {
			return &routes[i]
		}
	}
	return nil
}
