// Saguaro's S3-compatible test server: gofakes3 (github.com/johannesboyne/gofakes3) with its
// in-memory backend, listening on -addr, creating -bucket at start. scripts/setup.sh builds it
// inside the gofakes3 module (so the module's own go.sum pins every dependency) into .tools/bin.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	bucket := flag.String("bucket", "", "bucket created at start (optional)")
	flag.Parse()
	backend := s3mem.New()
	if *bucket != "" {
		if err := backend.CreateBucket(*bucket); err != nil {
			log.Fatalf("create bucket %s: %v", *bucket, err)
		}
	}
	faker := gofakes3.New(backend, gofakes3.WithAutoBucket(true), gofakes3.WithLogger(gofakes3.DiscardLog()))
	log.Printf("gofakes3 listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, faker.Server()))
}
