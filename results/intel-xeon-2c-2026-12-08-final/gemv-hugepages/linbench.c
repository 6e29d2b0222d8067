#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include "forward_impl.h"
moe_linear_fn moe_linear__v2;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  int64_t N=argc>1?atoll(argv[1]):151936, K=argc>2?atoll(argv[2]):2048; int T=argc>3?atoi(argv[3]):1;
  struct moe_qtensor w={0}; w.dtype=MOE_DTYPE_BF16; w.rows=N; w.cols=K;
  uint16_t *d=mmap(0,N*K*2,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); if(getenv("NOHUGE"))madvise(d,N*K*2,MADV_NOHUGEPAGE); else madvise(d,N*K*2,MADV_HUGEPAGE); for(int64_t i=0;i<N*K;i++) d[i]=0x3f80+(uint16_t)((i*7)&63); w.data=d;
  float *x=malloc(T*K*4),*y1=malloc(T*N*4),*y2=malloc(T*N*4); for(int64_t i=0;i<T*K;i++)x[i]=(float)((i%13)-6)/7.f;
  double t1[9],t2[9];
  for(int r=0;r<9;r++){double a=now();moe_linear__avx512(&w,T,x,y1,moe_threads_serial());double b=now();moe_linear__v2(&w,T,x,y2,moe_threads_serial());double c=now();t1[r]=b-a;t2[r]=c-b;}
  qsort(t1,9,8,cmp);qsort(t2,9,8,cmp);
  double bytes=N*K*2.0; double md=0; for(int64_t i=0;i<T*N;i++){double e=y1[i]-y2[i]; if(e<0)e=-e; double s=y1[i]<0?-y1[i]:y1[i]; if(e/(s+1e-3)>md)md=e/(s+1e-3);}
  printf("N=%ld K=%ld T=%d old %.2f ms %.2f GB/s | new %.2f ms %.2f GB/s | ratio %.3f | maxrel %.2e\n",N,K,T,t1[4]*1e3,bytes/t1[4]/1e9,t2[4]*1e3,bytes/t2[4]/1e9,t1[4]/t2[4],md);
}
