// Package console holds the PD web console's static pages (HTML, CSS and
// plain JavaScript, no build step and nothing fetched from a CDN),
// embedded in the binary with go:embed. The pages read the JSON API PD
// serves under /console/api/ (placementdriver/console.go,
// docs/console.md).
package console
